//! Feeds arbitrary bytes to the SIP parser, validator and every typed header view,
//! as both a datagram and a stream frame.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    softswitch::sip::wire::fuzz::exercise(data);
});
