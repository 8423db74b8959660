//! Transactions driven with a simulated clock: 32 seconds of RFC 3261 timers run in
//! microseconds.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::sip::wire::{Framing, Message, ResponseBuilder};

const PEER: &str = "192.0.2.7:5062";

fn peer() -> Peer {
    Peer::udp(PEER.parse().unwrap())
}

fn tcp_peer() -> Peer {
    Peer {
        transport: TransportKind::Tcp,
        addr: PEER.parse().unwrap(),
        conn: Some(1),
    }
}

fn request(method: &str, branch: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:1002@pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@pbx.local>;tag=f1\r\nTo: <sip:1002@pbx.local>\r\n\
         Call-ID: call-{branch}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn parse(b: Bytes) -> Message {
    Message::parse(b, Framing::Datagram).unwrap()
}

fn response_to(req: &Bytes, code: u16) -> Message {
    let req = parse(req.clone());
    parse(ResponseBuilder::new(&req, code, "X", None, Some("totag")).finish())
}

/// Advances time to each deadline up to `until`, recording when bytes left.
fn run_until(layer: &mut TransactionLayer, start: Instant, until: Duration) -> Vec<Duration> {
    let mut sent = Vec::new();
    while let Some(t) = layer.poll_timeout() {
        if t > start + until {
            break;
        }
        layer.handle_timeout(t);
        while layer.poll_transmit().is_some() {
            sent.push(t - start);
        }
    }
    sent
}

fn drain_events(layer: &mut TransactionLayer) -> Vec<TuEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn drain_transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn invite_client_retransmits_doubling_then_times_out_at_timer_b() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(t0, request("INVITE", "z9hG4bKa1"), peer())
        .unwrap();
    assert_eq!(drain_transmits(&mut layer).len(), 1);
    let resent = run_until(&mut layer, t0, Duration::from_secs(40));
    assert_eq!(
        resent,
        vec![ms(500), ms(1500), ms(3500), ms(7500), ms(15500), ms(31500)]
    );
    let events = drain_events(&mut layer);
    assert!(
        matches!(&events[..], [TuEvent::Timeout { key: TxKey::Client(k) }] if *k == key),
        "{events:?}"
    );
    assert!(layer.is_empty());
}

#[test]
fn non_invite_client_caps_retransmissions_at_t2() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(t0, request("OPTIONS", "z9hG4bKo1"), peer())
        .unwrap();
    drain_transmits(&mut layer);
    let resent = run_until(&mut layer, t0, Duration::from_secs(40));
    let expected: Vec<Duration> = [
        500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(resent, expected);
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Timeout { .. }]
    ));
}

#[test]
fn non_invite_client_uses_t2_once_proceeding() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("REGISTER", "z9hG4bKr1");
    layer.send_request(t0, req.clone(), peer()).unwrap();
    drain_transmits(&mut layer);
    layer.handle_response(t0 + ms(100), response_to(&req, 100), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Response { .. }]
    ));
    let resent = run_until(&mut layer, t0, Duration::from_secs(9));
    // The first E was armed at T1 before the 100 arrived; after it, T2 flat.
    assert_eq!(resent, vec![ms(500), ms(4500), ms(8500)]);
    layer.handle_response(t0 + Duration::from_secs(9), response_to(&req, 200), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Response { .. }]
    ));
    // A retransmitted final is absorbed in Completed; Timer K (T4) then ends it.
    layer.handle_response(t0 + Duration::from_secs(10), response_to(&req, 200), peer());
    assert!(drain_events(&mut layer).is_empty());
    run_until(&mut layer, t0, Duration::from_secs(20));
    assert!(layer.is_empty());
}

#[test]
fn invite_client_acks_a_failure_and_absorbs_its_retransmission() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("INVITE", "z9hG4bKb1");
    layer.send_request(t0, req.clone(), peer()).unwrap();
    drain_transmits(&mut layer);
    layer.handle_response(t0 + ms(50), response_to(&req, 486), peer());
    let sent = drain_transmits(&mut layer);
    assert_eq!(sent.len(), 1);
    let ack = parse(sent[0].bytes.clone());
    assert_eq!(ack.method(), Some(&crate::sip::wire::Method::Ack));
    assert_eq!(ack.to_header().unwrap().tag(), Some("totag"));
    assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKb1"));
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert!(
        matches!(&drain_events(&mut layer)[..], [TuEvent::Response { msg, .. }] if msg.status() == Some(486))
    );

    layer.handle_response(t0 + ms(600), response_to(&req, 486), peer());
    assert_eq!(drain_transmits(&mut layer).len(), 1, "ACK re-sent");
    assert!(
        drain_events(&mut layer).is_empty(),
        "retransmission not passed up"
    );
    assert!(run_until(&mut layer, t0, Duration::from_secs(33)).is_empty());
    assert!(layer.is_empty(), "Timer D ended it");
}

#[test]
fn invite_client_passes_2xx_retransmissions_while_accepted() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("INVITE", "z9hG4bKc1");
    layer.send_request(t0, req.clone(), peer()).unwrap();
    drain_transmits(&mut layer);
    layer.handle_response(t0 + ms(10), response_to(&req, 180), peer());
    layer.handle_response(t0 + ms(20), response_to(&req, 200), peer());
    assert!(
        drain_transmits(&mut layer).is_empty(),
        "the TU ACKs a 2xx, not the transaction"
    );
    layer.handle_response(t0 + ms(520), response_to(&req, 200), peer());
    assert_eq!(drain_events(&mut layer).len(), 3);
    run_until(&mut layer, t0, Duration::from_secs(33));
    assert!(layer.is_empty(), "Timer M ended it");
    layer.handle_response(t0 + Duration::from_secs(34), response_to(&req, 200), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::StrayResponse { .. }]
    ));
}

#[test]
fn reliable_transports_do_not_retransmit() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer
        .send_request(t0, request("INVITE", "z9hG4bKd1"), tcp_peer())
        .unwrap();
    assert_eq!(drain_transmits(&mut layer).len(), 1);
    assert!(run_until(&mut layer, t0, Duration::from_secs(40)).is_empty());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Timeout { .. }]
    ));
}

#[test]
fn non_invite_server_absorbs_then_replays_its_response() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("REGISTER", "z9hG4bKs1");
    layer.handle_request(t0, parse(req.clone()), peer());
    let key = match drain_events(&mut layer).pop() {
        Some(TuEvent::Request { key: Some(k), .. }) => k,
        other => panic!("{other:?}"),
    };
    layer.handle_request(t0 + ms(500), parse(req.clone()), peer());
    assert!(
        drain_transmits(&mut layer).is_empty(),
        "absorbed while Trying"
    );
    assert!(drain_events(&mut layer).is_empty());

    let ok = ResponseBuilder::new(&parse(req.clone()), 200, "OK", None, Some("t")).finish();
    layer
        .send_response(t0 + ms(600), &key, 200, ok.clone())
        .unwrap();
    assert_eq!(drain_transmits(&mut layer)[0].bytes, ok);
    layer.handle_request(t0 + ms(1500), parse(req.clone()), peer());
    assert_eq!(drain_transmits(&mut layer)[0].bytes, ok, "final replayed");
    assert_eq!(
        layer.send_response(t0 + ms(1600), &key, 200, ok.clone()),
        Err(TransactionError::AlreadyFinal)
    );

    run_until(&mut layer, t0, Duration::from_secs(33));
    assert!(layer.is_empty(), "Timer J ended it");
    layer.handle_request(t0 + Duration::from_secs(34), parse(req), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Request { key: Some(_), .. }]
    ));
}

#[test]
fn invite_server_sends_trying_retransmits_failure_until_ack() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("INVITE", "z9hG4bKs2");
    layer.handle_request(t0, parse(req.clone()), peer());
    let trying = drain_transmits(&mut layer);
    assert_eq!(parse(trying[0].bytes.clone()).status(), Some(100));
    let Some(TuEvent::Request { key: Some(key), .. }) = drain_events(&mut layer).pop() else {
        panic!()
    };
    layer.handle_request(t0 + ms(400), parse(req.clone()), peer());
    assert_eq!(
        parse(drain_transmits(&mut layer)[0].bytes.clone()).status(),
        Some(100)
    );

    let busy =
        ResponseBuilder::new(&parse(req.clone()), 486, "Busy Here", None, Some("t")).finish();
    layer.send_response(t0 + ms(500), &key, 486, busy).unwrap();
    drain_transmits(&mut layer);
    let resent = run_until(&mut layer, t0 + ms(500), Duration::from_secs(4));
    assert_eq!(resent, vec![ms(500), ms(1500), ms(3500)], "Timer G doubles");

    let ack = request("ACK", "z9hG4bKs2");
    layer.handle_request(t0 + Duration::from_secs(5), parse(ack), peer());
    assert!(
        drain_events(&mut layer).is_empty(),
        "ACK of a failure stays in the transaction"
    );
    assert_eq!(
        layer.server_invite_state(&key),
        Some(ServerInviteState::Confirmed)
    );
    assert!(run_until(&mut layer, t0, Duration::from_secs(60)).is_empty());
    assert!(layer.is_empty(), "Timer I ended it");
}

#[test]
fn invite_server_reports_a_missing_ack_at_timer_h() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("INVITE", "z9hG4bKs3");
    layer.handle_request(t0, parse(req.clone()), peer());
    let Some(TuEvent::Request { key: Some(key), .. }) = drain_events(&mut layer).pop() else {
        panic!()
    };
    let nf = ResponseBuilder::new(&parse(req), 404, "Not Found", None, Some("t")).finish();
    layer.send_response(t0, &key, 404, nf).unwrap();
    run_until(&mut layer, t0, Duration::from_secs(40));
    assert!(
        matches!(&drain_events(&mut layer)[..], [TuEvent::Timeout { key: TxKey::Server(k) }] if *k == key)
    );
    assert!(layer.is_empty());
}

#[test]
fn invite_server_accepted_absorbs_retransmissions_and_hands_2xx_acks_up() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let req = request("INVITE", "z9hG4bKs4");
    layer.handle_request(t0, parse(req.clone()), peer());
    let Some(TuEvent::Request { key: Some(key), .. }) = drain_events(&mut layer).pop() else {
        panic!()
    };
    drain_transmits(&mut layer);
    let ok = ResponseBuilder::new(&parse(req.clone()), 200, "OK", None, Some("t")).finish();
    layer.send_response(t0, &key, 200, ok).unwrap();
    drain_transmits(&mut layer);
    layer.handle_request(t0 + ms(500), parse(req), peer());
    assert!(drain_transmits(&mut layer).is_empty());
    assert!(drain_events(&mut layer).is_empty());
    // The 2xx ACK carries a new branch: it is the dialog's, not the transaction's.
    layer.handle_request(t0 + ms(600), parse(request("ACK", "z9hG4bKnew")), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Request { key: None, .. }]
    ));
}

#[test]
fn cancel_is_its_own_transaction_and_finds_the_invite() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    layer.handle_request(t0, parse(request("INVITE", "z9hG4bKs5")), peer());
    layer.handle_request(t0 + ms(10), parse(request("CANCEL", "z9hG4bKs5")), peer());
    let events = drain_events(&mut layer);
    let TuEvent::Request {
        key: Some(cancel_key),
        ..
    } = &events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        layer.server_invite_state(&cancel_key.invite_of_cancel()),
        Some(ServerInviteState::Proceeding)
    );
}

#[test]
fn transport_errors_reach_the_tu() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKe1"), tcp_peer())
        .unwrap();
    layer.handle_transport_error(&TxKey::Client(key.clone()));
    assert!(
        matches!(&drain_events(&mut layer)[..], [TuEvent::TransportError { key: TxKey::Client(k) }] if *k == key)
    );
    assert!(layer.is_empty());
}

#[test]
fn requests_without_a_usable_via_are_surfaced_but_acks_are_not() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let broken = "INVITE sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\nFrom: <sip:a@b>;tag=1\r\n\
                  To: <sip:b@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    layer.handle_request(t0, parse(Bytes::from(broken)), peer());
    assert!(matches!(
        drain_events(&mut layer)[..],
        [TuEvent::Unmatchable { .. }]
    ));
    layer.handle_request(
        t0,
        parse(Bytes::from(broken.replace("INVITE", "ACK"))),
        peer(),
    );
    assert!(drain_events(&mut layer).is_empty());
    assert!(layer.is_empty());
}

#[derive(Debug, Clone)]
enum Op {
    NewServer(u8, bool),
    RetransmitServer(u8),
    Respond(u8, u16),
    NewClient(u8, bool),
    Answer(u8, u16),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, any::<bool>()).prop_map(|(i, inv)| Op::NewServer(i, inv)),
        (0u8..6).prop_map(Op::RetransmitServer),
        (
            0u8..6,
            prop::sample::select(vec![100u16, 180, 200, 404, 486, 503])
        )
            .prop_map(|(i, c)| Op::Respond(i, c)),
        (0u8..6, any::<bool>()).prop_map(|(i, inv)| Op::NewClient(i, inv)),
        (
            0u8..6,
            prop::sample::select(vec![100u16, 183, 200, 302, 486])
        )
            .prop_map(|(i, c)| Op::Answer(i, c)),
        (1u16..20_000).prop_map(Op::Advance),
    ]
}

proptest! {
    /// Whatever happens, nothing panics, and once every server transaction has been
    /// answered, 40 quiet seconds leave the layer empty.
    #[test]
    fn the_layer_always_drains(ops in prop::collection::vec(op(), 1..60)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let mut server_keys = std::collections::HashMap::new();
        let method = |inv: bool| if inv { "INVITE" } else { "MESSAGE" };
        for op in ops {
            match op {
                Op::NewServer(i, inv) => {
                    let req = request(method(inv), &format!("z9hG4bKsrv{i}"));
                    layer.handle_request(now, parse(req.clone()), peer());
                    server_keys.entry((i, inv)).or_insert(req);
                }
                Op::RetransmitServer(i) => {
                    for inv in [true, false] {
                        if let Some(req) = server_keys.get(&(i, inv)) {
                            layer.handle_request(now, parse(req.clone()), peer());
                        }
                    }
                }
                Op::Respond(i, code) => {
                    for req in [true, false].iter().filter_map(|inv| server_keys.get(&(i, *inv))) {
                        let msg = parse(req.clone());
                        let key = ServerKey::of_request(&msg).unwrap();
                        let bytes = ResponseBuilder::new(&msg, code, "X", None, Some("t")).finish();
                        let _ = layer.send_response(now, &key, code, bytes);
                    }
                }
                Op::NewClient(i, inv) => {
                    let _ = layer.send_request(now, request(method(inv), &format!("z9hG4bKcli{i}")), peer());
                }
                Op::Answer(i, code) => {
                    for inv in [true, false] {
                        let req = request(method(inv), &format!("z9hG4bKcli{i}"));
                        layer.handle_response(now, response_to(&req, code), peer());
                    }
                }
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms as u64);
                    layer.handle_timeout(now);
                }
            }
            drain_transmits(&mut layer);
            drain_events(&mut layer);
        }
        // Answer every server transaction still waiting for its TU, then go quiet.
        for req in server_keys.values() {
            let msg = parse(req.clone());
            let key = ServerKey::of_request(&msg).unwrap();
            let bytes = ResponseBuilder::new(&msg, 500, "X", None, Some("t")).finish();
            let _ = layer.send_response(now, &key, 500, bytes);
        }
        let end = now + Duration::from_secs(40);
        while let Some(t) = layer.poll_timeout() {
            if t > end { break; }
            layer.handle_timeout(t);
        }
        prop_assert!(layer.is_empty(), "{} transactions left", layer.len());
    }
}
