//! The entry point the fuzz target calls. It also runs over the checked-in corpus as an
//! ordinary test, so CI exercises it without a fuzzer.

use std::net::SocketAddr;

use bytes::Bytes;

use super::{
    Credentials, Framing, HeaderName, Message, ResponseBuilder, Uri, unsupported_requirements,
    validate_request,
};

/// Parses `data` both as a datagram and as a stream frame and touches every typed view
/// and the response builder. Must never panic, whatever the input.
pub fn exercise(data: &[u8]) {
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(msg) = Message::parse(Bytes::copy_from_slice(data), framing) else {
            continue;
        };
        let _ = msg.vias();
        let _ = msg.top_via();
        let _ = msg.cseq();
        let _ = msg.from_header();
        let _ = msg.to_header();
        let _ = msg.contacts();
        let _ = msg.expires();
        let _ = msg.max_forwards();
        let _ = msg.name_addr_list(HeaderName::Route);
        if let Some(uri) = msg.request_uri() {
            let _ = Uri::parse(uri);
        }
        for value in msg.header_all(HeaderName::Authorization) {
            let _ = Credentials::parse(value);
        }
        let _ = unsupported_requirements(&msg, &["path"]);
        if msg.is_request() {
            let status = match validate_request(&msg) {
                Ok(_) => 200,
                Err(r) => r.status,
            };
            let src: SocketAddr = ([192, 0, 2, 1], 5060).into();
            let out = ResponseBuilder::new(&msg, status, "Fuzz", Some(src), Some("t")).finish();
            // What we write must be something we can read back.
            let reply = Message::parse(out, Framing::Datagram).expect("own response parses");
            assert_eq!(reply.status(), Some(status));
        }
    }
}
