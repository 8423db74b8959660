//! The SIP wire format, written in-tree (see the rsip assessment in
//! shared/reference/crates.md: rsip 0.4 refuses folded headers, whitespace before the
//! colon and IPv6 Request-URIs, ignores compact names and Content-Length, and allocates
//! about 35 times per message). This parser indexes one buffer, parses typed headers on
//! demand, and keeps enough of a faulty request to answer it.

mod auth;
mod builder;
mod date;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod header_name;
mod message;
mod method;
mod name_addr;
mod params;
mod text;
mod typed;
mod uri;
mod validate;
mod via;

pub use auth::{Algorithm, Challenge, Credentials, ParsedChallenge};
pub use builder::{RequestBuilder, ResponseBuilder, reason_phrase};
pub use date::sip_date;
pub use error::{Rejection, SyntaxError, WireError};
pub use header_name::HeaderName;
pub use message::{Framing, MAX_HEADERS, Message, StartLine};
pub use method::{Method, is_token_char};
pub use name_addr::{ContactList, NameAddr};
pub use params::{Params, unquote};
pub use text::{percent_decode, quote, split_list};
pub use typed::{CSeq, MAX_CSEQ, delta_seconds};
pub use uri::{Host, SipUri, TelUri, Uri};
pub use validate::{RequestHeads, unsupported_requirements, validate_request};
pub use via::{MAGIC_COOKIE, Rport, Via, parse_vias};
