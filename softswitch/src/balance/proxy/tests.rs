use super::*;
use crate::balance::config::{NodeSpec, ProbeSection};
use std::time::Duration;

const ME: &str = "127.0.0.10:5060";
const PHONE: &str = "127.0.0.5:5070";
const N1: &str = "127.0.0.1:5060";
const N2: &str = "127.0.0.2:5060";

fn proxy() -> Proxy {
    sharing(Share::Hash, Instant::now())
}

/// A balancer at ME over node-1 (N1) and node-2 (N2), weight 1 each.
fn sharing(share: Share, now: Instant) -> Proxy {
    let specs = [("node-1", N1), ("node-2", N2)]
        .iter()
        .map(|(n, a)| NodeSpec {
            name: n.to_string(),
            addr: a.parse().unwrap(),
            weight: 1,
        })
        .collect();
    let nodes = NodeSet::new(specs, ProbeSection::default().keepalive(), now);
    Proxy::new(ME.into(), ME.parse().unwrap(), nodes, share)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn send(p: &mut Proxy, text: &str, from: &str) -> (SocketAddr, String) {
    match p.on_datagram(
        Bytes::from(text.replace('\n', "\r\n")),
        addr(from),
        Instant::now(),
    ) {
        Forward::Send(to, bytes) => (to, String::from_utf8(bytes.to_vec()).unwrap()),
        other => panic!("{other:?} for\n{text}"),
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

fn invite(call_id: &str, extra: &str) -> String {
    format!(
        "INVITE sip:1002@pbx.local SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKabc;rport\n\
         Max-Forwards: 70\n\
         From: <sip:1001@pbx.local>;tag=a1\n\
         To: <sip:1002@pbx.local>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:1001@10.0.0.5:5070>\n\
         {extra}Content-Type: application/sdp\n\
         Content-Length: 5\n\nv=0\n"
    )
}

#[test]
fn a_new_call_goes_to_a_node_with_the_balancer_recorded_and_the_phone_stamped() {
    let mut p = proxy();
    let (to, out) = send(&mut p, &invite("c1@x", ""), PHONE);
    assert!(to == addr(N1) || to == addr(N2));
    let node = if to == addr(N1) { "node-1" } else { "node-2" };
    let vias = header(&out, "Via");
    assert!(
        vias[0].starts_with("SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKlb"),
        "{out}"
    );
    assert_eq!(
        vias[1],
        "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKabc;received=127.0.0.5;rport=5070"
    );
    assert_eq!(
        header(&out, "Record-Route"),
        [format!("<sip:127.0.0.10:5060;lr;sn={node};fl=127.0.0.5~5070>").as_str()]
    );
    assert_eq!(header(&out, "Max-Forwards"), ["69"]);
    assert!(out.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{out}");

    // Its CANCEL and retransmission land on the same node with the same branch.
    let (to2, again) = send(&mut p, &invite("c1@x", ""), PHONE);
    assert_eq!(to2, to);
    assert_eq!(header(&again, "Via")[0], vias[0]);
    let cancel = invite("c1@x", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    let (to3, c) = send(&mut p, &cancel, PHONE);
    assert_eq!(to3, to);
    assert_eq!(header(&c, "Via")[0], vias[0]);
}

#[test]
fn answers_go_back_on_their_via_without_the_balancers() {
    let mut p = proxy();
    let (node, out) = send(&mut p, &invite("c2@x", ""), PHONE);
    let our_via = header(&out, "Via")[0].to_owned();
    let phone_via = header(&out, "Via")[1].to_owned();
    let answer = format!(
        "SIP/2.0 200 OK\nVia: {our_via}\nVia: {phone_via}\nRecord-Route: {rr}\n\
         From: <sip:1001@pbx.local>;tag=a1\nTo: <sip:1002@pbx.local>;tag=b2\nCall-ID: c2@x\n\
         CSeq: 1 INVITE\nContact: <sip:{node}>\nContent-Length: 0\n\n",
        rr = header(&out, "Record-Route")[0]
    );
    let (to, back) = send(&mut p, &answer, &node.to_string());
    assert_eq!(to, addr(PHONE), "the NAT address, not the Via's");
    assert_eq!(header(&back, "Via"), [phone_via.as_str()]);
    assert_eq!(header(&back, "Record-Route").len(), 1);
}

#[test]
fn in_dialog_requests_reach_the_node_in_the_route_and_requests_from_nodes_the_flow() {
    let mut p = proxy();
    for node in ["node-1", "node-2"] {
        let bye = format!(
            "BYE sip:{node}@somewhere SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKbye\n\
             Route: <sip:127.0.0.10:5060;lr;sn={node};fl=127.0.0.5~5070>\n\
             From: <sip:1001@pbx.local>;tag=a1\nTo: <sip:1002@pbx.local>;tag=b2\nCall-ID: same\n\
             CSeq: 2 BYE\nContent-Length: 0\n\n"
        );
        let (to, out) = send(&mut p, &bye, PHONE);
        let want = if node == "node-1" { N1 } else { N2 };
        assert_eq!(to, addr(want));
        assert!(header(&out, "Route").is_empty(), "{out}");
    }
    // A node calls a phone registered through the balancer: its Path is the route.
    let call = "INVITE sip:1002@10.0.0.9:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKn2\n\
                Route: <sip:127.0.0.10:5060;lr;fl=127.0.0.9~5071>\n\
                From: <sip:1001@pbx.local>;tag=n2\nTo: <sip:1002@pbx.local>\nCall-ID: out-1\n\
                CSeq: 1 INVITE\nContent-Length: 0\n\n";
    let (to, out) = send(&mut p, call, N2);
    assert_eq!(to, addr("127.0.0.9:5071"));
    assert_eq!(
        header(&out, "Record-Route"),
        ["<sip:127.0.0.10:5060;lr;sn=node-2;fl=127.0.0.9~5071>"]
    );
    assert_eq!(header(&out, "Via").len(), 2);
    assert!(header(&out, "Route").is_empty());
}

#[test]
fn a_register_gets_a_path_with_the_phones_address() {
    let mut p = proxy();
    let reg = "REGISTER sip:pbx.local SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKr\n\
               Max-Forwards: 70\nFrom: <sip:1002@pbx.local>;tag=r\nTo: <sip:1002@pbx.local>\n\
               Call-ID: reg-1\nCSeq: 1 REGISTER\nContact: <sip:1002@10.0.0.5:5070>\nContent-Length: 0\n\n";
    let (_, out) = send(&mut p, reg, PHONE);
    assert_eq!(
        header(&out, "Path"),
        ["<sip:127.0.0.10:5060;lr;fl=127.0.0.5~5070>"]
    );
    assert!(header(&out, "Record-Route").is_empty());
}

#[test]
fn hop_limits_dead_clusters_loops_and_garbage_are_answered_or_dropped() {
    let mut p = proxy();
    let (to, out) = send(
        &mut p,
        &invite("c3", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
        PHONE,
    );
    assert_eq!(to, addr(PHONE));
    assert!(out.starts_with("SIP/2.0 483 "), "{out}");
    assert!(header(&out, "To")[0].contains(";tag="));

    let looped = invite("c4", "").replace("10.0.0.5:5070;branch", "127.0.0.10:5060;branch");
    assert_eq!(
        p.on_datagram(Bytes::from(looped), addr(PHONE), Instant::now()),
        Forward::Nothing
    );
    assert_eq!(
        p.on_datagram(
            Bytes::from_static(b"\x16\x03\x01 hello"),
            addr(PHONE),
            Instant::now()
        ),
        Forward::Nothing
    );
    // A response that did not come through the balancer is not forwarded anywhere.
    let stray = "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKx\nFrom: <sip:a@b>;tag=1\n\
                 To: <sip:a@b>;tag=2\nCall-ID: s\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";
    assert_eq!(
        p.on_datagram(
            Bytes::from(stray.replace('\n', "\r\n")),
            addr(N1),
            Instant::now()
        ),
        Forward::Nothing
    );

    // Every node draining: the caller is told to come back later.
    let start = Instant::now();
    for step in 0..3 {
        let now = start + Duration::from_millis(150 * step);
        for (dest, bytes) in p.probes(now) {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let call_id = header(&text, "Call-ID")[0].to_owned();
            let via = header(&text, "Via")[0].to_owned();
            let answer = format!(
                "SIP/2.0 503 Draining\r\nVia: {via}\r\nFrom: <sip:balancer@x>;tag=1\r\nTo: <sip:n>;tag=2\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n"
            );
            assert_eq!(
                p.on_datagram(Bytes::from(answer), dest, now),
                Forward::Nothing
            );
        }
    }
    let (to, out) = send(&mut p, &invite("c5", ""), PHONE);
    assert_eq!(to, addr(PHONE));
    assert!(out.starts_with("SIP/2.0 503 "), "{out}");
    assert_eq!(header(&out, "Retry-After"), ["5"]);
}

#[test]
fn a_nodes_own_503_with_retry_after_moves_new_calls_away() {
    let mut p = proxy();
    let (node, out) = send(&mut p, &invite("first", ""), PHONE);
    let refusal = format!(
        "SIP/2.0 503 Service Unavailable\r\nVia: {}\r\nVia: {}\r\nFrom: <sip:1001@pbx.local>;tag=a1\r\n\
         To: <sip:1002@pbx.local>;tag=z\r\nCall-ID: first\r\nCSeq: 1 INVITE\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n",
        header(&out, "Via")[0],
        header(&out, "Via")[1]
    );
    let _ = p.on_datagram(Bytes::from(refusal), node, Instant::now());
    for i in 0..50 {
        let (to, _) = send(&mut p, &invite(&format!("after-{i}"), ""), PHONE);
        assert_ne!(to, node);
    }
}

#[test]
fn flows_survive_encoding() {
    for a in ["127.0.0.5:5070", "[2001:db8::1]:5062"] {
        let a: SocketAddr = a.parse().unwrap();
        for f in [Flow::udp(a), Flow::tcp(a)] {
            assert_eq!(decode_flow(&encode_flow(f)), Some(f));
        }
    }
    assert_eq!(
        encode_flow(Flow::tcp(addr("127.0.0.5:5070"))),
        "127.0.0.5~5070~t"
    );
    for bad in ["nonsense", "127.0.0.5~5070~x", "127.0.0.5"] {
        assert_eq!(decode_flow(bad), None, "{bad}");
    }
}

#[test]
fn a_refused_invite_is_acked_and_sent_to_the_other_node() {
    let mut p = proxy();
    let (first, out) = send(&mut p, &invite("drained@x", ""), PHONE);
    let other = if first == addr(N1) {
        addr(N2)
    } else {
        addr(N1)
    };
    let refusal = format!(
        "SIP/2.0 503 Service Unavailable\r\nVia: {}\r\nVia: {}\r\nFrom: <sip:1001@pbx.local>;tag=a1\r\n\
         To: <sip:1002@pbx.local>;tag=r1\r\nCall-ID: drained@x\r\nCSeq: 1 INVITE\r\nRetry-After: 10\r\nContent-Length: 0\r\n\r\n",
        header(&out, "Via")[0],
        header(&out, "Via")[1]
    );
    let Forward::Several(sends) =
        p.on_datagram(Bytes::from(refusal.clone()), first, Instant::now())
    else {
        panic!("the refusal was not retried");
    };
    let text = |b: &Bytes| String::from_utf8(b.to_vec()).unwrap();
    let (ack_to, ack) = (&sends[0].0, text(&sends[0].1));
    assert_eq!(*ack_to, first);
    assert!(
        ack.starts_with("ACK sip:1002@pbx.local SIP/2.0\r\n"),
        "{ack}"
    );
    assert_eq!(header(&ack, "Via"), [header(&out, "Via")[0]]);
    assert_eq!(header(&ack, "To"), ["<sip:1002@pbx.local>;tag=r1"]);
    assert_eq!(header(&ack, "CSeq"), ["1 ACK"]);
    let (again_to, again) = (&sends[1].0, text(&sends[1].1));
    assert_eq!(*again_to, other);
    assert!(again.starts_with("INVITE sip:1002@pbx.local"), "{again}");
    let other_name = if other == addr(N1) {
        "node-1"
    } else {
        "node-2"
    };
    assert!(
        header(&again, "Record-Route")[0].contains(&format!("sn={other_name}")),
        "{again}"
    );
    assert_eq!(header(&again, "Via")[0], header(&out, "Via")[0]);
    // The refusing node repeats its 503 (the ACK was lost): only the ACK again.
    assert_eq!(
        p.on_datagram(Bytes::from(refusal), first, Instant::now()),
        Forward::Send(first, sends[0].1.clone())
    );
    assert_eq!(p.stats.retried, 1);
}

#[test]
fn with_least_load_a_transaction_stays_on_its_node_and_loads_come_from_probes() {
    let start = Instant::now();
    let mut p = sharing(Share::LeastLoad, start);
    // node-1 reports 50 calls, node-2 none.
    for step in 0..3 {
        let now = start + Duration::from_millis(150 * step);
        for (dest, bytes) in p.probes(now) {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            let calls = if dest == addr(N1) { 50 } else { 0 };
            let answer = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: <sip:balancer@x>;tag=1\r\nTo: <sip:n>;tag=2\r\n\
                 Call-ID: {}\r\nCSeq: 1 OPTIONS\r\nX-Calls-In-Progress: {calls}\r\nContent-Length: 0\r\n\r\n",
                header(&text, "Via")[0],
                header(&text, "Call-ID")[0]
            );
            p.on_datagram(Bytes::from(answer), dest, now);
        }
    }
    let (to, _) = send(&mut p, &invite("ll-1", ""), PHONE);
    assert_eq!(to, addr(N2));
    // Its CANCEL follows it, though the Call-ID alone would say nothing.
    let cancel = invite("ll-1", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    assert_eq!(send(&mut p, &cancel, PHONE).0, addr(N2));
    let views = p.nodes.view(start);
    assert_eq!(views[0].calls, Some(50));
}

/// What a message from a TCP phone (or to one) turns into.
fn over_tcp(p: &mut Proxy, text: &str, from: &str) -> Forward {
    p.on_message(
        Bytes::from(text.replace("\r\n", "\n").replace('\n', "\r\n")),
        Flow::tcp(addr(from)),
        Instant::now(),
    )
}

fn text(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn a_tcp_phone_is_reached_on_its_connection_and_record_routed_on_both_sides() {
    let mut p = proxy();
    // It registers over TCP: the Path names its connection.
    let reg = "REGISTER sip:pbx.local SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bKr\n\
               Max-Forwards: 70\nFrom: <sip:1002@pbx.local>;tag=r\nTo: <sip:1002@pbx.local>\n\
               Call-ID: reg-t\nCSeq: 1 REGISTER\nContact: <sip:1002@10.0.0.5:5070;transport=tcp>\n\
               Content-Length: 0\n\n";
    let Forward::Send(node, out) = over_tcp(&mut p, reg, PHONE) else {
        panic!("a REGISTER goes to a node over UDP")
    };
    let out = text(&out);
    assert_eq!(
        header(&out, "Path"),
        ["<sip:127.0.0.10:5060;lr;fl=127.0.0.5~5070~t>"]
    );
    assert!(header(&out, "Via")[0].starts_with("SIP/2.0/UDP 127.0.0.10:5060"));
    assert!(header(&out, "Via")[1].contains("received=127.0.0.5;rport=5070"));
    // The node's answer goes back on the connection.
    let ok = out.replacen("REGISTER sip:pbx.local SIP/2.0", "SIP/2.0 200 OK", 1);
    match p.on_datagram(Bytes::from(ok), node, Instant::now()) {
        Forward::Stream(to, b) => {
            assert_eq!(to, addr(PHONE));
            assert_eq!(header(&text(&b), "Via").len(), 1);
        }
        other => panic!("{other:?}"),
    }

    // node-2 calls it through the Path: out on the connection, with the
    // balancer's Via for TCP and an entry for each side, the phone's on top.
    let call = "INVITE sip:1002@10.0.0.5:5070;transport=tcp SIP/2.0\n\
                Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKn2\n\
                Route: <sip:127.0.0.10:5060;lr;fl=127.0.0.5~5070~t>\n\
                From: <sip:1001@pbx.local>;tag=n2\nTo: <sip:1002@pbx.local>\nCall-ID: out-t\n\
                CSeq: 1 INVITE\nContent-Length: 0\n\n";
    let Forward::Stream(to, out) = p.on_datagram(
        Bytes::from(call.replace('\n', "\r\n")),
        addr(N2),
        Instant::now(),
    ) else {
        panic!("to the phone's connection")
    };
    assert_eq!(to, addr(PHONE));
    let out = text(&out);
    assert!(header(&out, "Via")[0].starts_with("SIP/2.0/TCP 127.0.0.10:5060"));
    assert_eq!(
        header(&out, "Record-Route"),
        [
            "<sip:127.0.0.10:5060;transport=tcp;lr;sn=node-2;fl=127.0.0.5~5070~t>, \
          <sip:127.0.0.10:5060;lr;sn=node-2;fl=127.0.0.5~5070~t>"
        ]
    );
    // Its 200 goes to the node over UDP.
    let ok = out.replacen(
        "INVITE sip:1002@10.0.0.5:5070;transport=tcp SIP/2.0",
        "SIP/2.0 200 OK",
        1,
    );
    match over_tcp(&mut p, &ok, PHONE) {
        Forward::Send(to, _) => assert_eq!(to, addr(N2)),
        other => panic!("{other:?}"),
    }
    // It hangs up along the recorded route: both entries are the balancer's.
    let bye = "BYE sip:1001@127.0.0.2:5060 SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bKb\n\
               Route: <sip:127.0.0.10:5060;transport=tcp;lr;sn=node-2;fl=127.0.0.5~5070~t>\n\
               Route: <sip:127.0.0.10:5060;lr;sn=node-2;fl=127.0.0.5~5070~t>\n\
               From: <sip:1002@pbx.local>;tag=p\nTo: <sip:1001@pbx.local>;tag=n2\nCall-ID: out-t\n\
               CSeq: 1 BYE\nContent-Length: 0\n\n";
    match over_tcp(&mut p, bye, PHONE) {
        Forward::Send(to, b) => {
            assert_eq!(to, addr(N2));
            assert!(header(&text(&b), "Route").is_empty());
        }
        other => panic!("{other:?}"),
    }

    // A call it makes: the node's side on top (the node reaches it first).
    let inv = invite("in-t", "").replace("SIP/2.0/UDP 10.0.0.5", "SIP/2.0/TCP 10.0.0.5");
    let Forward::Send(_, out) = over_tcp(&mut p, &inv, PHONE) else {
        panic!("to a node over UDP")
    };
    let rr = header(&text(&out), "Record-Route")[0].to_owned();
    assert!(
        rr.starts_with("<sip:127.0.0.10:5060;lr;sn=node-")
            && rr.contains(">, <sip:127.0.0.10:5060;transport=tcp;lr;"),
        "{rr}"
    );
    // A stateless answer (here to a request out of hops) goes on the connection.
    let dead = invite("hops", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert!(matches!(
        over_tcp(&mut p, &dead, PHONE),
        Forward::Stream(..)
    ));
}
