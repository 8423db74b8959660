//! The relay over real loopback sockets: phones are plain UDP sockets on 127.0.0.1.
//! Each test uses its own slice of ports below the Linux ephemeral range (32768+), so
//! tests running in parallel, and the phones' own `:0` sockets, do not collide.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use media::relay::{Relay, RelayError, Session, Side};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);
/// How long to listen before concluding that nothing arrives.
const QUIET: Duration = Duration::from_millis(150);

fn relay(first: u16, last: u16) -> Relay {
    Relay::new(LOCALHOST, first..=last)
}

async fn phone() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).await.unwrap()
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().unwrap()
}

fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An RTCP receiver report with no report blocks.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

async fn send(from: &UdpSocket, packet: &[u8], to: SocketAddr) {
    from.send_to(packet, to).await.unwrap();
}

async fn recv(on: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, src) = timeout(WAIT, on.recv_from(&mut buf))
        .await
        .expect("packet did not arrive")
        .unwrap();
    (buf[..n].to_vec(), src)
}

async fn assert_quiet(on: &UdpSocket) {
    let mut buf = [0u8; 2048];
    if let Ok(r) = timeout(QUIET, on.recv_from(&mut buf)).await {
        panic!("unexpected packet: {r:?}");
    }
}

/// Waits (bounded) until `cond` holds, for values the relay task publishes.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn relays(
    from: &UdpSocket,
    to_relay: SocketAddr,
    on: &UdpSocket,
    expected_src: SocketAddr,
    packet: &[u8],
) {
    send(from, packet, to_relay).await;
    let (got, src) = recv(on).await;
    assert_eq!(got, packet);
    assert_eq!(
        src, expected_src,
        "media must come from the relay port given to that phone"
    );
}

#[tokio::test]
async fn relays_both_ways_with_identical_payloads() {
    let relay = relay(31000, 31009);
    let s = relay.allocate().unwrap();
    assert_eq!(s.local_rtp(Side::A).port() % 2, 0);
    assert_eq!(
        s.local_rtcp(Side::A).port(),
        s.local_rtp(Side::A).port() + 1
    );
    assert_ne!(s.local_rtp(Side::A), s.local_rtp(Side::B));
    let (a, b) = (phone().await, phone().await);
    s.set_remote(Side::A, addr(&a), None, false);
    s.set_remote(Side::B, addr(&b), None, false);
    for seq in 0..20u16 {
        let payload: Vec<u8> = (0..160).map(|i| (i as u16 ^ seq) as u8).collect();
        relays(
            &a,
            s.local_rtp(Side::A),
            &b,
            s.local_rtp(Side::B),
            &rtp(seq, &payload),
        )
        .await;
        relays(
            &b,
            s.local_rtp(Side::B),
            &a,
            s.local_rtp(Side::A),
            &rtp(seq + 1000, &payload),
        )
        .await;
    }
    eventually("counters", || {
        s.forwarded(Side::A) == 20 && s.forwarded(Side::B) == 20
    })
    .await;
    assert_eq!(s.latched(Side::A), Some(addr(&a)));
    assert_eq!(s.latched(Side::B), Some(addr(&b)));
}

#[tokio::test]
async fn latches_to_the_source_a_natted_phone_sends_from() {
    let relay = relay(31010, 31019);
    let s = relay.allocate().unwrap();
    // Phone A announces one address (its private one) but its packets come from
    // another (the NAT's mapping).
    let (announced, natted, b) = (phone().await, phone().await, phone().await);
    s.set_remote(Side::A, addr(&announced), None, false);
    s.set_remote(Side::B, addr(&b), None, false);

    // Before A sends anything, media for A goes to the announced address.
    relays(
        &b,
        s.local_rtp(Side::B),
        &announced,
        s.local_rtp(Side::A),
        &rtp(1, b"early"),
    )
    .await;
    assert_eq!(s.latched(Side::A), None);

    relays(
        &natted,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(1, b"hello"),
    )
    .await;
    eventually("latch", || s.latched(Side::A) == Some(addr(&natted))).await;

    relays(
        &b,
        s.local_rtp(Side::B),
        &natted,
        s.local_rtp(Side::A),
        &rtp(2, b"answer"),
    )
    .await;
    assert_quiet(&announced).await;
}

#[tokio::test]
async fn packets_from_a_stranger_are_dropped() {
    let relay = relay(31070, 31079);
    let s = relay.allocate().unwrap();
    let (a, b, stranger) = (phone().await, phone().await, phone().await);
    s.set_remote(Side::A, addr(&a), None, false);
    s.set_remote(Side::B, addr(&b), None, false);
    relays(
        &a,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(1, b"mine"),
    )
    .await;

    send(&stranger, &rtp(9, b"injected"), s.local_rtp(Side::A)).await;
    assert_quiet(&b).await;
    eventually("foreign counter", || {
        s.counters(Side::A).foreign_source == 1
    })
    .await;
    assert_eq!(s.latched(Side::A), Some(addr(&a)));
    // B's media still goes to the real phone, not the stranger.
    relays(
        &b,
        s.local_rtp(Side::B),
        &a,
        s.local_rtp(Side::A),
        &rtp(1, b"reply"),
    )
    .await;
    assert_quiet(&stranger).await;
}

#[tokio::test]
async fn a_new_announced_address_relatches_at_once() {
    let relay = relay(31080, 31089);
    let s = relay.allocate().unwrap();
    let (a1, a2, b) = (phone().await, phone().await, phone().await);
    s.set_remote(Side::A, addr(&a1), None, false);
    s.set_remote(Side::B, addr(&b), None, false);
    relays(
        &a1,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(1, b"one"),
    )
    .await;

    // A transfer: side A is now another phone.
    s.set_remote(Side::A, addr(&a2), None, false);
    relays(
        &b,
        s.local_rtp(Side::B),
        &a2,
        s.local_rtp(Side::A),
        &rtp(1, b"to new"),
    )
    .await;
    relays(
        &a2,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(500, b"two"),
    )
    .await;
    eventually("relatch", || s.latched(Side::A) == Some(addr(&a2))).await;
    // The old phone is a stranger now.
    send(&a1, &rtp(2, b"old"), s.local_rtp(Side::A)).await;
    assert_quiet(&b).await;
}

#[tokio::test]
async fn rtcp_goes_between_the_rtcp_ports() {
    let relay = relay(31020, 31029);
    let s = relay.allocate().unwrap();
    let (a_rtp, a_rtcp, b_rtp, b_rtcp) =
        (phone().await, phone().await, phone().await, phone().await);
    s.set_remote(Side::A, addr(&a_rtp), Some(addr(&a_rtcp)), false);
    s.set_remote(Side::B, addr(&b_rtp), Some(addr(&b_rtcp)), false);

    let rr = rtcp_rr(0x1111);
    relays(
        &a_rtcp,
        s.local_rtcp(Side::A),
        &b_rtcp,
        s.local_rtcp(Side::B),
        &rr,
    )
    .await;
    let rr = rtcp_rr(0x2222);
    relays(
        &b_rtcp,
        s.local_rtcp(Side::B),
        &a_rtcp,
        s.local_rtcp(Side::A),
        &rr,
    )
    .await;
    assert_quiet(&a_rtp).await;
    assert_quiet(&b_rtp).await;
    eventually("rtcp counters", || {
        s.counters(Side::A).rtcp_forwarded == 1 && s.counters(Side::B).rtcp_forwarded == 1
    })
    .await;
    assert_eq!(s.counters(Side::A).rtp_forwarded, 0);
    // RTCP does not count as media activity, nor as RTP statistics.
    assert_eq!(s.stats(Side::A).packets, 0);
}

#[tokio::test]
async fn rtcp_mux_on_one_side_only() {
    let relay = relay(31030, 31039);
    let s = relay.allocate().unwrap();
    let (a_rtp, a_rtcp, b) = (phone().await, phone().await, phone().await);
    s.set_remote(Side::A, addr(&a_rtp), Some(addr(&a_rtcp)), false);
    // B muxes: one socket for everything; the rtcp argument is ignored.
    s.set_remote(
        Side::B,
        addr(&b),
        Some("127.0.0.1:9".parse().unwrap()),
        true,
    );

    // A's separate RTCP arrives at B on its RTP port, from B's relay RTP port.
    let rr = rtcp_rr(0xa);
    relays(
        &a_rtcp,
        s.local_rtcp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rr,
    )
    .await;
    // B's muxed RTCP is split out to A's RTCP port.
    let rr = rtcp_rr(0xb);
    relays(
        &b,
        s.local_rtp(Side::B),
        &a_rtcp,
        s.local_rtcp(Side::A),
        &rr,
    )
    .await;
    // RTP as usual.
    relays(
        &b,
        s.local_rtp(Side::B),
        &a_rtp,
        s.local_rtp(Side::A),
        &rtp(1, b"b"),
    )
    .await;
    relays(
        &a_rtp,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(1, b"a"),
    )
    .await;
    assert_quiet(&a_rtp).await;
    eventually("stats", || s.stats(Side::B).packets == 1).await;
}

#[tokio::test]
async fn counters_and_stats_count() {
    let relay = relay(31060, 31069);
    let s = relay.allocate().unwrap();
    let (a, b) = (phone().await, phone().await);
    s.set_remote(Side::A, addr(&a), None, false);

    // B's address is not known yet: A's media is measured but has nowhere to go.
    for seq in 0..3 {
        send(&a, &rtp(seq, b"x"), s.local_rtp(Side::A)).await;
    }
    eventually("no_destination", || s.counters(Side::A).no_destination == 3).await;
    assert_eq!(s.forwarded(Side::A), 0);

    s.set_remote(Side::B, addr(&b), None, false);
    // Seq 3..10 with 6 missing: 6 forwarded, 1 lost.
    for seq in (3..10).filter(|&q| q != 6) {
        relays(
            &a,
            s.local_rtp(Side::A),
            &b,
            s.local_rtp(Side::B),
            &rtp(seq, b"x"),
        )
        .await;
    }
    // Garbage is dropped and counted.
    send(&a, b"\x00\x01hello", s.local_rtp(Side::A)).await;
    send(&a, &[0x80, 0, 0, 1, 0, 0, 0, 0], s.local_rtp(Side::A)).await;
    assert_quiet(&b).await;
    eventually("counters", || s.counters(Side::A).invalid == 2).await;

    let c = s.counters(Side::A);
    assert_eq!(c.rtp_received, 9);
    assert_eq!(c.rtp_forwarded, 6);
    assert_eq!(s.forwarded(Side::A), 6);
    assert_eq!(c.no_destination, 3);
    assert_eq!(c.send_errors, 0);
    let st = s.stats(Side::A);
    assert_eq!(st.packets, 9);
    assert_eq!(st.bytes, 9 * 13);
    assert_eq!(st.expected, 10);
    assert_eq!(st.lost, 1);
    assert_eq!(st.max_seq_gap, 1);
    assert!(st.jitter_ms >= 0.0);
    assert_eq!(s.stats(Side::B).packets, 0);
    assert!(s.idle_for() < WAIT);
}

#[tokio::test]
async fn idle_for_grows_without_rtp() {
    let relay = relay(31110, 31119);
    let s = relay.allocate().unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(s.idle_for() >= Duration::from_millis(50));
    let a = phone().await;
    s.set_remote(Side::A, addr(&a), None, false);
    send(&a, &rtp(1, b"x"), s.local_rtp(Side::A)).await;
    eventually("activity", || s.idle_for() < Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_session_pointed_at_itself_does_not_loop() {
    let relay = relay(31120, 31129);
    let s = relay.allocate().unwrap();
    let a = phone().await;
    s.set_remote(Side::A, addr(&a), None, false);
    s.set_remote(Side::B, s.local_rtp(Side::A), None, false);
    send(&a, &rtp(1, b"x"), s.local_rtp(Side::A)).await;
    eventually("looped", || s.counters(Side::A).looped == 1).await;
    assert_quiet(&a).await;
    assert_eq!(s.counters(Side::A).looped, 1);
}

#[tokio::test]
async fn ports_return_on_drop_and_are_reusable() {
    let relay = relay(31040, 31047); // four pairs: two sessions
    assert_eq!(relay.capacity(), 4);
    let s1 = relay.allocate().unwrap();
    let s2 = relay.allocate().unwrap();
    assert_eq!(relay.ports_in_use(), 4);
    assert!(matches!(relay.allocate(), Err(RelayError::Exhausted(_))));
    let first_ports = [s1.local_rtp(Side::A), s1.local_rtp(Side::B)];
    drop(s1);
    drop(s2);
    eventually("ports back", || relay.ports_in_use() == 0).await;

    // Both sessions' worth again, so the freed ports are bound anew.
    let s3 = relay.allocate().unwrap();
    let s4 = relay.allocate().unwrap();
    let all: Vec<_> = [&s3, &s4]
        .iter()
        .flat_map(|s| [s.local_rtp(Side::A), s.local_rtp(Side::B)])
        .collect();
    assert!(first_ports.iter().all(|p| all.contains(p)));
    // And they relay.
    let (a, b) = (phone().await, phone().await);
    s4.set_remote(Side::A, addr(&a), None, false);
    s4.set_remote(Side::B, addr(&b), None, false);
    relays(
        &a,
        s4.local_rtp(Side::A),
        &b,
        s4.local_rtp(Side::B),
        &rtp(1, b"again"),
    )
    .await;
    drop((s3, s4));
    eventually("ports back", || relay.ports_in_use() == 0).await;
}

#[tokio::test]
async fn a_finished_sessions_sockets_serve_the_next_one_without_its_stragglers() {
    let relay = relay(31480, 31483); // two pairs: one session at a time
    let s1 = relay.allocate().unwrap();
    let ports = [s1.local_rtp(Side::A), s1.local_rtp(Side::B)];
    let (a, b) = (phone().await, phone().await);
    s1.set_remote(Side::A, addr(&a), None, false);
    s1.set_remote(Side::B, addr(&b), None, false);
    relays(&a, ports[0], &b, ports[1], &rtp(1, b"first call")).await;
    drop(s1);
    eventually("pairs parked", || {
        relay.ports_in_use() == 0 && relay.ports_parked() == 2
    })
    .await;
    // The first call's phone goes on sending after its hangup.
    for seq in 2..5 {
        send(&a, &rtp(seq, b"straggler"), ports[0]).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let s2 = relay.allocate().unwrap();
    assert_eq!([s2.local_rtp(Side::A), s2.local_rtp(Side::B)], ports);
    assert_eq!((relay.ports_in_use(), relay.ports_parked()), (2, 0));
    let (c, d) = (phone().await, phone().await);
    s2.set_remote(Side::A, addr(&c), None, false);
    s2.set_remote(Side::B, addr(&d), None, false);
    relays(&c, ports[0], &d, ports[1], &rtp(7, b"second call")).await;
    relays(&d, ports[1], &c, ports[0], &rtp(8, b"answer")).await;
    assert_quiet(&d).await;
    assert_eq!(s2.counters(Side::A).rtp_received, 1);
    assert_eq!(s2.latched(Side::A), Some(addr(&c)));
}

#[test]
fn a_pair_parked_by_one_media_thread_serves_a_session_on_another() {
    // Two pairs and two media threads: sessions alternate between the threads,
    // and each takes over the pairs the previous one parked.
    let relay = Relay::with_threads(LOCALHOST, LOCALHOST, 31484..=31487, 2).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut ports = None;
        for round in 0..4u16 {
            let s = relay.allocate().unwrap();
            let here = [s.local_rtp(Side::A), s.local_rtp(Side::B)];
            assert_eq!(*ports.get_or_insert(here), here, "round {round}");
            let (a, b) = (phone().await, phone().await);
            s.set_remote(Side::A, addr(&a), None, false);
            s.set_remote(Side::B, addr(&b), None, false);
            relays(&a, here[0], &b, here[1], &rtp(round, b"there")).await;
            relays(&b, here[1], &a, here[0], &rtp(round, b"back")).await;
            drop(s);
            eventually("pairs parked", || {
                relay.ports_in_use() == 0 && relay.ports_parked() == 2
            })
            .await;
        }
    });
}

#[tokio::test]
async fn a_dropped_session_stops_relaying() {
    let relay = relay(31130, 31139);
    let s = relay.allocate().unwrap();
    let (a, b) = (phone().await, phone().await);
    s.set_remote(Side::A, addr(&a), None, false);
    s.set_remote(Side::B, addr(&b), None, false);
    let to = s.local_rtp(Side::A);
    relays(&a, to, &b, s.local_rtp(Side::B), &rtp(1, b"x")).await;
    drop(s);
    eventually("ports back", || relay.ports_in_use() == 0).await;
    // The port is parked or closed: the send succeeds (UDP) but nothing is relayed.
    let _ = a.send_to(&rtp(2, b"y"), to).await;
    assert_quiet(&b).await;
}

#[tokio::test]
async fn exhaustion_is_an_error_and_releases_what_it_took() {
    let tiny = relay(31050, 31053); // two pairs: one session
    let s = tiny.allocate().unwrap();
    match tiny.allocate() {
        Err(e @ RelayError::Exhausted(_)) => {
            assert_eq!(e.to_string(), "no free RTP ports in 31050-31053")
        }
        other => panic!("expected exhaustion, got {other:?}"),
    }
    assert_eq!(tiny.ports_in_use(), 2);
    drop(s);

    let one_pair = relay(31054, 31055);
    assert!(matches!(one_pair.allocate(), Err(RelayError::Exhausted(_))));
    assert_eq!(one_pair.ports_in_use(), 0);
    assert!(matches!(
        relay(31057, 31057).allocate(),
        Err(RelayError::Exhausted(_))
    ));
}

#[tokio::test]
async fn pairs_in_use_elsewhere_are_skipped() {
    // Another program holds 31140; its pair is skipped.
    let squatter = std::net::UdpSocket::bind((LOCALHOST, 31140)).unwrap();
    let relay = relay(31140, 31145);
    let s = relay.allocate().unwrap();
    let ports = [s.local_rtp(Side::A).port(), s.local_rtp(Side::B).port()];
    assert_eq!(ports, [31142, 31144]);
    assert_eq!(relay.ports_in_use(), 2);
    drop(squatter);
}

#[tokio::test]
async fn binding_an_address_this_host_lacks_is_an_io_error() {
    // TEST-NET-1 is never a local address.
    let relay = Relay::new("192.0.2.1".parse().unwrap(), 31150..=31159);
    assert!(matches!(relay.allocate(), Err(RelayError::Io(_))));
    assert_eq!(relay.ports_in_use(), 0);
}

#[tokio::test]
async fn advertised_address_goes_in_sdp() {
    let public: IpAddr = "203.0.113.50".parse().unwrap();
    let relay = Relay::with_advertised(LOCALHOST, public, 31160..=31169);
    let s = relay.allocate().unwrap();
    assert_eq!(s.local_rtp(Side::A).ip(), public);
    assert_eq!(s.local_rtp(Side::B).ip(), public);
}

/// The relay runs on its own threads: a caller with no runtime at all can use it.
#[test]
fn sessions_relay_on_the_relays_own_threads() {
    let relay = Relay::with_threads(LOCALHOST, LOCALHOST, 31170..=31179, 2).unwrap();
    assert_eq!(relay.threads(), 2);
    let session = relay.allocate().unwrap();
    let a = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let b = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    b.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    session.set_remote(Side::B, b.local_addr().unwrap(), None, false);
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    a.send_to(&pkt, session.local_rtp(Side::A)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!(n, 172);
    assert_eq!(from, session.local_rtp(Side::B));
    // The relay thread counts a packet once it is sent, so the count may land
    // just after the packet does.
    let counted = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while session.forwarded(Side::A) == 0 && std::time::Instant::now() < counted {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(session.forwarded(Side::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_on_a_multi_thread_runtime() {
    let relay = relay(31200, 31299);
    let mut sessions: Vec<(Session, UdpSocket, UdpSocket)> = Vec::new();
    for _ in 0..10 {
        let s = relay.allocate().unwrap();
        let (a, b) = (phone().await, phone().await);
        s.set_remote(Side::A, addr(&a), None, false);
        s.set_remote(Side::B, addr(&b), None, false);
        sessions.push((s, a, b));
    }
    assert_eq!(relay.ports_in_use(), 20);
    for seq in 0..10u16 {
        for (s, a, b) in &sessions {
            relays(
                a,
                s.local_rtp(Side::A),
                b,
                s.local_rtp(Side::B),
                &rtp(seq, b"a"),
            )
            .await;
            relays(
                b,
                s.local_rtp(Side::B),
                a,
                s.local_rtp(Side::A),
                &rtp(seq, b"b"),
            )
            .await;
        }
    }
    for (s, _, _) in &sessions {
        eventually("stats", || {
            s.stats(Side::A).packets == 10 && s.stats(Side::B).packets == 10
        })
        .await;
        assert_eq!(s.stats(Side::A).lost, 0);
    }
    drop(sessions);
    eventually("ports back", || relay.ports_in_use() == 0).await;
}

#[tokio::test]
async fn ipv6_loopback() {
    let Ok(probe) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let relay = Relay::new("::1".parse().unwrap(), 31180..=31189);
    let s = relay.allocate().unwrap();
    assert!(s.local_rtp(Side::A).is_ipv6());
    let b = UdpSocket::bind("[::1]:0").await.unwrap();
    s.set_remote(Side::A, addr(&probe), None, false);
    s.set_remote(Side::B, addr(&b), None, false);
    relays(
        &probe,
        s.local_rtp(Side::A),
        &b,
        s.local_rtp(Side::B),
        &rtp(1, b"v6"),
    )
    .await;
    relays(
        &b,
        s.local_rtp(Side::B),
        &probe,
        s.local_rtp(Side::A),
        &rtp(1, b"v6"),
    )
    .await;
}

/// Echo(): a phone's RTP comes back to it from the port it sent to, under another
/// SSRC, and nothing reaches the other side.
#[test]
fn echo_returns_a_phones_rtp_to_it_under_another_ssrc() {
    let relay = Relay::new(LOCALHOST, 31190..=31199);
    let session = relay.allocate().unwrap();
    let a = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let b = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
    }
    session.set_remote(Side::B, b.local_addr().unwrap(), None, false);
    session.set_echo(Side::A, true);
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    pkt[20] = 0x42;
    a.send_to(&pkt, session.local_rtp(Side::A)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (172, session.local_rtp(Side::A)));
    assert_ne!(buf[8..12], pkt[8..12], "the SSRC changes");
    assert_eq!(buf[12..n], pkt[12..], "the rest is the phone's own packet");
    assert!(b.recv_from(&mut buf).is_err(), "nothing crosses to side B");
}

/// A prompt goes to the phone from its side's RTP port, 20 ms per packet, with
/// consecutive sequence numbers, timestamps 160 apart and the marker on the first.
#[test]
fn play_sends_a_paced_rtp_stream_to_the_phone() {
    let relay = Relay::new(LOCALHOST, 31400..=31409);
    let session = relay.allocate().unwrap();
    let phone = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    phone
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    session.set_remote(Side::A, phone.local_addr().unwrap(), None, false);
    // Five packets' worth of PCMA, the last one short (padded with silence).
    let payload: Vec<u8> = (0..4 * 160 + 80).map(|i| (i % 251) as u8).collect();
    let started = std::time::Instant::now();
    session.play(Side::A, payload.clone().into(), 8, false);
    let mut buf = [0u8; 2048];
    let mut headers = Vec::new();
    for n in 0..5 {
        let (len, from) = phone.recv_from(&mut buf).unwrap();
        assert_eq!(len, 172);
        assert_eq!(from, session.local_rtp(Side::A));
        let expected = &payload[n * 160..payload.len().min((n + 1) * 160)];
        assert_eq!(&buf[12..12 + expected.len()], expected);
        headers.push((
            buf[1],
            u16::from_be_bytes([buf[2], buf[3]]),
            u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ));
    }
    assert_eq!(
        buf[12 + 80..172],
        [0xd5; 80],
        "A-law silence pads the last frame"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(75),
        "paced: {elapsed:?}"
    );
    assert_eq!(
        headers[0].0,
        0x80 | 8,
        "marker and PCMA on the first packet"
    );
    for w in headers.windows(2) {
        assert_eq!(w[1].0, 8);
        assert_eq!(w[1].1, w[0].1.wrapping_add(1));
        assert_eq!(w[1].2, w[0].2.wrapping_add(160));
    }
    assert!(
        phone.recv_from(&mut buf).is_err(),
        "nothing after the prompt"
    );
}

/// RFC 4733 digits from a phone reach the digit sink once per event, whatever the
/// number of packets (start, updates, three end packets), and are still relayed.
#[test]
fn telephone_events_are_reported_once_per_digit() {
    let relay = Relay::new(LOCALHOST, 31410..=31419);
    let session = relay.allocate().unwrap();
    let phone = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    session.listen_for_digits(
        Side::A,
        101,
        std::sync::Arc::new(move |side, d| {
            let _ = tx.lock().unwrap().send((side, d));
        }),
    );
    let event = |seq: u16, ts: u32, code: u8, end: bool, duration: u16| {
        let mut p = vec![0x80, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, code, 10, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        if end {
            p[13] |= 0x80;
        }
        p[14..16].copy_from_slice(&duration.to_be_bytes());
        p
    };
    let to = session.local_rtp(Side::A);
    let mut seq = 1;
    for (ts, code) in [(1000u32, 2u8), (2600, 11)] {
        for (i, end) in [false, false, false, true, true, true]
            .into_iter()
            .enumerate()
        {
            phone
                .send_to(&event(seq, ts, code, end, 160 * (i as u16 + 1)), to)
                .unwrap();
            seq += 1;
        }
    }
    let got: Vec<(Side, char)> = (0..2)
        .map(|_| rx.recv_timeout(std::time::Duration::from_secs(2)).unwrap())
        .collect();
    assert_eq!(got, [(Side::A, '2'), (Side::A, '#')]);
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(200))
            .is_err()
    );
}

/// MixMonitor-style recording over real sockets: what both phones send through
/// the relay lands in one WAV file, each direction where it was spoken, while the
/// packets still cross to the other phone.
#[test]
fn recording_mixes_both_directions_into_a_wav_file() {
    let relay = Relay::new(LOCALHOST, 31420..=31429);
    let session = relay.allocate().unwrap();
    let a = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let b = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    session.set_remote(Side::A, a.local_addr().unwrap(), None, false);
    session.set_remote(Side::B, b.local_addr().unwrap(), None, false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let recording = session
        .record(&media::record::RecordSpec {
            path: path.clone(),
            sides: [true, true],
            append: false,
        })
        .unwrap();
    // A says a 400 Hz tone for 0.4 s, then B a 1 kHz one for 0.4 s.
    let frame = |freq: f64, n: usize| -> Vec<u8> {
        (0..160)
            .map(|k| {
                let t = (n * 160 + k) as f64 / 8000.0;
                media::g711::ulaw_encode(
                    (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16,
                )
            })
            .collect()
    };
    for (socket, to, freq, ssrc) in [
        (&a, session.local_rtp(Side::A), 400.0, 1u8),
        (&b, session.local_rtp(Side::B), 1000.0, 2u8),
    ] {
        for n in 0..20 {
            let mut p = rtp(n as u16, &frame(freq, n));
            p[11] = ssrc;
            socket.send_to(&p, to).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    recording.finish(media::record::Ending::Keep);
    let samples = media::prompt::Prompt::load(&path)
        .unwrap()
        .samples()
        .to_vec();
    let energy = |range: std::ops::Range<usize>, freq: f64| -> f64 {
        // Goertzel power of one frequency, normalised by length.
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in &samples[range.clone()] {
            let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / range.len() as f64
    };
    assert!(samples.len() >= 6000, "{} samples", samples.len());
    let first = 400..2800;
    let second = samples.len() - 2800..samples.len() - 400;
    assert!(energy(first.clone(), 400.0) > 50.0 * energy(first, 1000.0));
    assert!(energy(second.clone(), 1000.0) > 50.0 * energy(second, 400.0));
}

/// Goertzel power of `freq` in µ-law `payloads`, per sample.
fn tone_power(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / samples.len() as f64
}

/// Three phones in one conference room: each hears the other two and not itself,
/// in its own law, from the port it sends to.
#[test]
fn a_conference_member_hears_everyone_but_themself() {
    let relay = Relay::new(LOCALHOST, 31430..=31449);
    let freqs = [400.0, 700.0, 1100.0];
    let laws = [0u8, 8, 0];
    let mut members = Vec::new();
    for (n, &law) in laws.iter().enumerate() {
        let session = relay.allocate().unwrap();
        let phone = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
        phone
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        session.set_remote(Side::A, phone.local_addr().unwrap(), None, false);
        let seat = session.join("sales", law);
        members.push((session, phone, seat, freqs[n], law));
    }
    assert_eq!(relay.conferences(), [("sales".to_string(), 3)]);
    let encode = |law: u8, s: i16| {
        if law == 8 {
            media::g711::alaw_encode(s)
        } else {
            media::g711::ulaw_encode(s)
        }
    };
    // 1.2 s of each phone's tone, 20 ms apart, while collecting what each hears.
    let mut heard: Vec<Vec<i16>> = vec![Vec::new(); 3];
    let mut buf = [0u8; 2048];
    for n in 0..60u16 {
        for (session, phone, _, freq, law) in &members {
            let payload: Vec<u8> = (0..160)
                .map(|k| {
                    let t = (usize::from(n) * 160 + k) as f64 / 8000.0;
                    encode(
                        *law,
                        (6000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16,
                    )
                })
                .collect();
            let mut p = rtp(n, &payload);
            p[1] = *law;
            phone.send_to(&p, session.local_rtp(Side::A)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        for (k, (session, phone, ..)) in members.iter().enumerate() {
            phone.set_nonblocking(true).unwrap();
            while let Ok((len, from)) = phone.recv_from(&mut buf) {
                assert_eq!(from, session.local_rtp(Side::A));
                assert_eq!(buf[1] & 0x7f, laws[k], "each hears its own law");
                let decode = if laws[k] == 8 {
                    media::g711::alaw_decode
                } else {
                    media::g711::ulaw_decode
                };
                heard[k].extend(buf[12..len].iter().map(|&b| decode(b)));
            }
            phone.set_nonblocking(false).unwrap();
        }
    }
    for (k, samples) in heard.iter().enumerate() {
        assert!(
            samples.len() >= 160 * 30,
            "member {k} heard {} samples",
            samples.len()
        );
        // Skip the join tones at the start.
        let tail = &samples[samples.len() / 2..];
        let own = tone_power(tail, freqs[k]);
        for (j, f) in freqs.iter().enumerate() {
            if j != k {
                let other = tone_power(tail, *f);
                assert!(
                    other > 100.0 * own.max(1.0),
                    "member {k}: {f} Hz {other:.0} vs own {own:.0}"
                );
            }
        }
    }
    // Leaving: the room shrinks, then goes away with its last member.
    members.pop();
    assert_eq!(relay.conferences(), [("sales".to_string(), 2)]);
    members.clear();
    assert!(relay.conferences().is_empty());
}

/// SendDTMF: each key is a run of telephone-events with one timestamp, growing
/// durations, the marker on the first and the end bit on the last three.
#[test]
fn digits_go_out_as_rfc4733_events() {
    let relay = Relay::new(LOCALHOST, 31450..=31459);
    let session = relay.allocate().unwrap();
    let phone = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    session.set_remote(Side::A, phone.local_addr().unwrap(), None, false);
    session.send_digits(
        Side::A,
        "4#",
        101,
        Duration::from_millis(100),
        Duration::from_millis(50),
    );
    let mut events = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok((len, from)) = phone.recv_from(&mut buf) {
        assert_eq!((len, from), (16, session.local_rtp(Side::A)));
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let duration = u16::from_be_bytes([buf[14], buf[15]]);
        events.push((buf[1], ts, buf[12], buf[13] & 0x80 != 0, duration));
    }
    // 100 ms = 5 steps, then two more copies of the end packet: 7 per key.
    assert_eq!(events.len(), 14, "{events:?}");
    for key in events.chunks(7) {
        assert_eq!(key[0].0, 0x80 | 101, "marker on the first");
        assert!(key[1..].iter().all(|e| e.0 == 101));
        assert!(key.iter().all(|e| e.1 == key[0].1), "one timestamp per key");
        let ends: Vec<bool> = key.iter().map(|e| e.3).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert_eq!(key[6].4, 800, "the final duration: 100 ms at 8 kHz");
    }
    assert_eq!((events[0].2, events[7].2), (4, 11));
    assert!(events[7].1 > events[0].1, "the next key starts later");
}

/// Round trip from RTCP: phone B's sender report crosses to A; A's receiver
/// report names it (LSR) and how long A held it (DLSR); the relay takes the rest
/// as the round trip to A.
#[test]
fn rtcp_reports_give_the_round_trip_to_a_phone() {
    let relay = Relay::new(LOCALHOST, 31460..=31469);
    let session = relay.allocate().unwrap();
    let a = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    let b = std::net::UdpSocket::bind((LOCALHOST, 0)).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    session.set_remote(Side::A, a.local_addr().unwrap(), None, true);
    session.set_remote(Side::B, b.local_addr().unwrap(), None, true);
    assert_eq!(session.rtt(Side::A), None);
    // B's SR: NTP 0x0000_1234.5678_0000 → middle 32 bits 0x1234_5678.
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&2u32.to_be_bytes());
    sr.extend_from_slice(&0x0000_1234u32.to_be_bytes());
    sr.extend_from_slice(&0x5678_0000u32.to_be_bytes());
    sr.extend_from_slice(&[0; 12]);
    b.send_to(&sr, session.local_rtp(Side::B)).unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &sr[..], "the SR crosses unchanged");
    // A holds it 100 ms and says so; another 50 ms pass on the way back.
    std::thread::sleep(Duration::from_millis(150));
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&1u32.to_be_bytes());
    rr.extend_from_slice(&2u32.to_be_bytes());
    rr.extend_from_slice(&[0; 12]);
    rr.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    rr.extend_from_slice(&(65_536u32 / 10).to_be_bytes());
    a.send_to(&rr, session.local_rtp(Side::A)).unwrap();
    let mut rtt = None;
    for _ in 0..100 {
        rtt = session.rtt(Side::A);
        if rtt.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rtt = rtt.expect("a round trip");
    assert!(
        (Duration::from_millis(40)..Duration::from_millis(150)).contains(&rtt),
        "{rtt:?}"
    );
    assert_eq!(session.rtt(Side::B), None, "B answered nothing");
}
