//! Media for the softswitch: every call's RTP is anchored on this crate's relay.
//!
//! - [`sdp`] reads what each phone offers or answers and rewrites it to point at
//!   the relay, touching nothing else.
//! - [`relay`] owns the UDP ports and moves RTP/RTCP between the two phones of a
//!   call, with NAT latching.
//! - [`stats`] measures each direction (RFC 3550 loss and jitter) for CDRs and
//!   monitoring; it is sans-IO, so the relay feeds it and tests drive it directly.
//! - [`rtp`] is the little of the RTP/RTCP wire format the relay needs.
//! - [`prompt`] reads sound files for the media applications and [`g711`] encodes
//!   them for the call; [`relay::Session::play`] sends them to a phone.
//! - [`conference`] mixes rooms of callers ([`relay::Session::join`]).
//! - [`record`] writes one or both directions of a call to a sound file
//!   ([`relay::Session::record`]).
//!
//! The call agent's use, in order: [`relay::Relay::allocate`] a session when a call
//! starts, [`sdp::Sdp::parse`] each SDP and [`relay::Session::set_remote`] its
//! address, send [`sdp::Sdp::rewrite`] with [`relay::Session::local_rtp`] of the
//! receiving side, and drop the session when the call ends.

pub mod conference;
pub mod g711;
pub mod prompt;
pub mod record;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod stats;
pub mod tones;

pub use relay::{Relay, RelayError, Session, Side};
pub use sdp::{Codec, Direction, MediaInfo, Sdp, SdpError};
pub use stats::{ReceiverStats, StreamStats};
