use std::net::SocketAddr;

use super::*;

/// What baresip 3.x offers: opus/G722/G711 with DTMF, rtcp-mux, a=rtcp and ICE.
const BARESIP: &str = "v=0\r\n\
o=- 3421617925 3421617925 IN IP4 192.168.1.10\r\n\
s=-\r\n\
c=IN IP4 192.168.1.10\r\n\
t=0 0\r\n\
a=ice-options:trickle\r\n\
m=audio 10000 RTP/AVP 111 9 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:10001\r\n\
a=rtcp-mux\r\n\
a=ice-ufrag:Kq3z\r\n\
a=ice-pwd:tL0G4HjUQm0XQ1nNqFy3bS7e\r\n\
a=candidate:1 1 UDP 2130706431 192.168.1.10 10000 typ host\r\n\
a=candidate:1 2 UDP 2130706430 192.168.1.10 10001 typ host\r\n\
a=end-of-candidates\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n";

/// What Linphone offers: session-level ICE credentials, media-level c=, static PTs
/// without rtpmap, a video stream that relies on the session-level c=.
const LINPHONE: &str = "v=0\r\n\
o=1001 3127 1234 IN IP4 10.0.0.5\r\n\
s=Talk\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
a=ice-pwd:31ec21eb38b2ec6d36e8dc7b\r\n\
a=ice-ufrag:0f2dd1ff\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 7078 RTP/AVP 96 97 0 8 18 101\r\n\
c=IN IP4 10.0.0.5\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:7079 IN IP4 10.0.0.5\r\n\
a=candidate:1 1 UDP 2130706431 10.0.0.5 7078 typ host\r\n\
a=candidate:2 1 UDP 1694498815 203.0.113.9 40000 typ srflx raddr 10.0.0.5 rport 7078\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
m=video 9078 RTP/AVPF 96\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack pli\r\n";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn codec(pt: u8, name: &str, clock_rate: u32, channels: Option<u8>) -> Codec {
    Codec {
        pt,
        name: name.to_owned(),
        clock_rate,
        channels,
    }
}

#[test]
fn baresip_offer() {
    let sdp = Sdp::parse(BARESIP).unwrap();
    let media = sdp.media();
    assert_eq!(media.len(), 1);
    let m = &media[0];
    assert_eq!(m.kind, "audio");
    assert_eq!(m.port, 10000);
    assert_eq!(m.proto, "RTP/AVP");
    assert_eq!(m.formats, ["111", "9", "0", "8", "101"]);
    assert_eq!(m.rtp, Some(sa("192.168.1.10:10000")));
    assert!(m.rtcp_mux);
    // Under rtcp-mux RTCP rides the RTP port whatever a=rtcp says.
    assert_eq!(m.rtcp, m.rtp);
    assert_eq!(m.direction, Direction::SendRecv);
    assert_eq!(
        m.codecs,
        [
            codec(111, "opus", 48000, Some(2)),
            codec(9, "G722", 8000, None),
            codec(0, "PCMU", 8000, None),
            codec(8, "PCMA", 8000, None),
            codec(101, "telephone-event", 8000, None),
        ]
    );
    assert_eq!(sdp.session_version(), Some(3421617925));
    assert_eq!(sdp.media_line_number(0), Some(7));
}

#[test]
fn linphone_offer() {
    let sdp = Sdp::parse(LINPHONE).unwrap();
    let media = sdp.media();
    assert_eq!(media.len(), 2);
    let audio = &media[0];
    assert_eq!(audio.rtp, Some(sa("10.0.0.5:7078")));
    assert_eq!(audio.rtcp, Some(sa("10.0.0.5:7079")));
    assert!(!audio.rtcp_mux);
    assert_eq!(
        audio.codecs,
        [
            codec(96, "opus", 48000, Some(2)),
            codec(97, "speex", 16000, None),
            codec(0, "PCMU", 8000, None),
            codec(8, "PCMA", 8000, None),
            codec(18, "G729", 8000, None),
            codec(101, "telephone-event", 8000, None),
        ]
    );
    let video = &media[1];
    assert_eq!(video.kind, "video");
    assert_eq!(video.proto, "RTP/AVPF");
    assert_eq!(video.rtp, Some(sa("10.0.0.5:9078")));
    assert_eq!(video.rtcp, Some(sa("10.0.0.5:9079")));
    assert_eq!(video.codecs, [codec(96, "VP8", 90000, None)]);
}

#[test]
fn bare_newlines_and_blank_lines_are_accepted() {
    let text = BARESIP.replace("\r\n", "\n") + "\n\n";
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(sdp.media()[0].rtp, Some(sa("192.168.1.10:10000")));
    // Display gives the body back with CRLF.
    assert_eq!(sdp.to_string(), BARESIP);
}

#[test]
fn ipv6_connection() {
    let text = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
                m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP6 2001:db8::2\r\n";
    let m = &Sdp::parse(text).unwrap().media()[0];
    assert_eq!(m.rtp, Some(sa("[2001:db8::1]:4000")));
    assert_eq!(m.rtcp, Some(sa("[2001:db8::2]:4001")));
    assert_eq!(m.codecs, [codec(0, "PCMU", 8000, None)]);
}

#[test]
fn media_level_connection_overrides_session_level() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 8\nc=IN IP4 10.0.0.2/127\n\
                m=audio 5000 RTP/AVP 8\n";
    let media = Sdp::parse(text).unwrap().media();
    assert_eq!(media[0].rtp, Some(sa("10.0.0.2:4000")));
    assert_eq!(media[1].rtp, Some(sa("10.0.0.1:5000")));
}

#[test]
fn media_level_connection_only() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\nc=IN IP4 10.0.0.2\n";
    assert_eq!(
        Sdp::parse(text).unwrap().media()[0].rtp,
        Some(sa("10.0.0.2:4000"))
    );
}

#[test]
fn port_zero_streams() {
    // A rejected stream needs no address and has none.
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\nc=IN IP4 10.0.0.2\n\
                m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n";
    let media = Sdp::parse(text).unwrap().media();
    assert_eq!(media[1].port, 0);
    assert_eq!(media[1].rtp, None);
    assert_eq!(media[1].rtcp, None);
    assert_eq!(media[1].codecs, [codec(96, "H264", 90000, None)]);
}

#[test]
fn hold_by_direction_attribute() {
    let text = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\na=sendonly\n";
    let m = &Sdp::parse(text).unwrap().media()[0];
    assert_eq!(m.direction, Direction::SendOnly);
    assert_eq!(m.rtp, Some(sa("10.0.0.1:4000")));
}

#[test]
fn session_level_direction_is_inherited_and_overridden() {
    let text = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\na=recvonly\n\
                m=audio 4000 RTP/AVP 0\n\
                m=audio 4002 RTP/AVP 0\na=inactive\n";
    let media = Sdp::parse(text).unwrap().media();
    assert_eq!(media[0].direction, Direction::RecvOnly);
    assert_eq!(media[1].direction, Direction::Inactive);
}

#[test]
fn hold_by_unspecified_address() {
    let text = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\n\
                m=audio 4002 RTP/AVP 0\na=recvonly\n";
    let media = Sdp::parse(text).unwrap().media();
    assert_eq!(media[0].direction, Direction::SendOnly);
    assert_eq!(media[0].rtp, None);
    assert_eq!(media[0].rtcp, None);
    assert_eq!(media[1].direction, Direction::Inactive);
}

#[test]
fn non_rtp_streams_have_no_codecs() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=application 5060 TCP/BFCP *\n";
    let m = &Sdp::parse(text).unwrap().media()[0];
    assert_eq!(m.formats, ["*"]);
    assert!(m.codecs.is_empty());
}

#[test]
fn malformed_attributes_are_ignored() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 0 96\na=rtpmap:96\na=rtpmap:x y/z\na=rtcp:notaport\n";
    let m = &Sdp::parse(text).unwrap().media()[0];
    assert_eq!(m.codecs, [codec(0, "PCMU", 8000, None)]);
    assert_eq!(m.rtcp, Some(sa("10.0.0.1:4001")));
}

#[test]
fn malformed_input_errors() {
    type Check = fn(&SdpError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, SdpError::Empty)),
        ("\r\n\r\n", |e| matches!(e, SdpError::Empty)),
        ("o=- 1 1 IN IP4 1.2.3.4\r\n", |e| {
            matches!(e, SdpError::MissingVersion { line: 1, .. })
        }),
        ("v=1\r\n", |e| {
            matches!(e, SdpError::BadVersion { line: 1, .. })
        }),
        ("v=0\r\nthis is not sdp\r\n", |e| {
            matches!(e, SdpError::MalformedLine { line: 2 })
        }),
        ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", |e| {
            matches!(e, SdpError::BadOrigin { line: 2, .. })
        }),
        ("v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n", |e| {
            matches!(e, SdpError::BadOrigin { line: 2, .. })
        }),
        ("v=0\r\nc=IN IP4 pbx.example.com\r\n", |e| {
            matches!(e, SdpError::BadConnection { line: 2, .. })
        }),
        ("v=0\r\nc=IN IP4 ::1\r\n", |e| {
            matches!(e, SdpError::BadConnection { line: 2, .. })
        }),
        ("v=0\r\nc=IN IP4\r\n", |e| {
            matches!(e, SdpError::BadConnection { line: 2, .. })
        }),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio\r\n", |e| {
            matches!(e, SdpError::BadMedia { line: 3, .. })
        }),
        (
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
            |e| matches!(e, SdpError::BadMedia { line: 3, .. }),
        ),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n", |e| {
            matches!(e, SdpError::BadMedia { line: 3, .. })
        }),
        ("v=0\r\nm=audio 4000 RTP/AVP 0\r\n", |e| {
            matches!(e, SdpError::NoConnection { line: 2, index: 0 })
        }),
        (
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4002 RTP/AVP 0\r\n",
            |e| matches!(e, SdpError::NoConnection { line: 4, index: 1 }),
        ),
    ];
    for (text, check) in cases {
        let err = Sdp::parse(text).expect_err(text);
        assert!(check(&err), "{text:?} gave {err:?}");
        // Every error names a line (or says the body is empty) in its message.
        let msg = err.to_string();
        assert!(msg.starts_with("line ") || msg == "empty SDP body", "{msg}");
    }
}

#[test]
fn error_messages_do_not_quote_whole_bodies() {
    let long = format!("x={}\r\n", "y".repeat(500));
    let msg = Sdp::parse(&long).unwrap_err().to_string();
    assert!(msg.len() < 120, "{msg}");
}

fn lines(text: &str) -> Vec<&str> {
    assert!(text.ends_with("\r\n"));
    let body = text.strip_suffix("\r\n").unwrap();
    assert!(!body.contains("\r\n\r\n"));
    body.split("\r\n")
        .inspect(|l| assert!(!l.contains('\n')))
        .collect()
}

#[test]
fn rewrite_round_trip_baresip() {
    let sdp = Sdp::parse(BARESIP).unwrap();
    let relay = sa("203.0.113.1:30000");
    let out = sdp.rewrite(&[Some(relay)], 3421617926);
    let again = Sdp::parse(&out).unwrap();
    let m = &again.media()[0];
    assert_eq!(m.rtp, Some(relay));
    assert_eq!(m.rtcp, Some(relay), "rtcp-mux kept");
    assert!(m.rtcp_mux);
    assert_eq!(m.codecs, sdp.media()[0].codecs);
    assert_eq!(again.session_version(), Some(3421617926));

    let l = lines(&out);
    assert_eq!(l[1], "o=- 3421617925 3421617926 IN IP4 203.0.113.1");
    assert!(l.contains(&"c=IN IP4 203.0.113.1"));
    assert!(l.contains(&"m=audio 30000 RTP/AVP 111 9 0 8 101"));
    assert!(l.contains(&"a=rtcp:30001"));
    assert!(
        !out.contains("192.168.1.10"),
        "phone address leaked:\n{out}"
    );
    assert!(!out.contains("candidate") && !out.contains("ice-"), "{out}");
    // Everything else passes through in order.
    let kept: Vec<&str> = l
        .iter()
        .copied()
        .filter(|l| l.starts_with("a=rtpmap") || l.starts_with("a=fmtp") || l.starts_with("b="))
        .collect();
    assert_eq!(
        kept,
        [
            "b=AS:64",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 stereo=1;sprop-stereo=1",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
        ]
    );
    assert_eq!(
        &l[l.len() - 3..],
        ["a=rtcp-mux", "a=sendrecv", "a=ptime:20"]
    );
}

#[test]
fn rewrite_one_stream_keeps_the_other_at_its_address() {
    let sdp = Sdp::parse(LINPHONE).unwrap();
    let relay = sa("198.51.100.7:30002");
    let out = sdp.rewrite(&[Some(relay), None], 7);
    let again = Sdp::parse(&out).unwrap();
    let media = again.media();
    assert_eq!(media[0].rtp, Some(relay));
    assert_eq!(media[0].rtcp, Some(sa("198.51.100.7:30003")));
    // Video relied on the session-level c=, which now names the relay: it gets a
    // media-level c= with the phone's address instead.
    assert_eq!(media[1].rtp, Some(sa("10.0.0.5:9078")));
    assert!(lines(&out).contains(&"a=rtcp:30003 IN IP4 198.51.100.7"));
    assert!(!out.contains("ice-") && !out.contains("candidate"));
    assert!(out.contains("a=rtcp-xr:rcvr-rtt=all:10000"));
    assert!(out.contains("a=fmtp:18 annexb=yes\r\na=rtpmap:101 telephone-event/8000\r\n"));
}

#[test]
fn rewrite_short_stream_list_keeps_the_rest() {
    let sdp = Sdp::parse(LINPHONE).unwrap();
    let a = sdp.rewrite(&[Some(sa("198.51.100.7:30002"))], 7);
    let b = sdp.rewrite(&[Some(sa("198.51.100.7:30002")), None], 7);
    assert_eq!(a, b);
}

#[test]
fn rewrite_reject_disables_a_stream() {
    let sdp = Sdp::parse(LINPHONE).unwrap();
    let out = sdp.rewrite_anchors(
        &[Anchor::Relay(sa("198.51.100.7:30002")), Anchor::Reject],
        8,
    );
    let media = Sdp::parse(&out).unwrap().media();
    assert_eq!(media[1].port, 0);
    assert_eq!(media[1].rtp, None);
    assert!(lines(&out).contains(&"m=video 0 RTP/AVPF 96"));
}

#[test]
fn rewrite_to_ipv6_relay() {
    let sdp = Sdp::parse(BARESIP).unwrap();
    let relay = sa("[2001:db8::10]:30000");
    let out = sdp.rewrite(&[Some(relay)], 1);
    assert!(out.contains("o=- 3421617925 1 IN IP6 2001:db8::10\r\n"));
    assert!(out.contains("c=IN IP6 2001:db8::10\r\n"));
    assert_eq!(Sdp::parse(&out).unwrap().media()[0].rtp, Some(relay));
}

#[test]
fn rewrite_keeps_port_zero() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\nm=video 0 RTP/AVP 96\n";
    let sdp = Sdp::parse(text).unwrap();
    let relay = sa("10.9.9.9:30000");
    let out = sdp.rewrite(&[Some(relay), Some(sa("10.9.9.9:30004"))], 2);
    let media = Sdp::parse(&out).unwrap().media();
    assert_eq!(media[0].rtp, Some(relay));
    assert_eq!(media[1].port, 0);
    assert!(out.contains("m=video 0 RTP/AVP 96\r\n"));
}

#[test]
fn rewrite_turns_address_hold_into_direction() {
    let text = "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\na=sendrecv\na=ptime:20\n";
    let sdp = Sdp::parse(text).unwrap();
    let relay = sa("10.9.9.9:30000");
    let out = sdp.rewrite(&[Some(relay)], 3);
    let m = &Sdp::parse(&out).unwrap().media()[0];
    assert_eq!(m.rtp, Some(relay));
    assert_eq!(m.direction, Direction::SendOnly);
    assert!(!out.contains("a=sendrecv"), "{out}");
    assert!(!out.contains("0.0.0.0"), "{out}");
}

#[test]
fn rewrite_without_relay_only_sets_the_version() {
    let sdp = Sdp::parse(LINPHONE).unwrap();
    let out = sdp.rewrite(&[], 1235);
    assert!(out.starts_with("v=0\r\no=1001 3127 1235 IN IP4 10.0.0.5\r\n"));
    let media = Sdp::parse(&out).unwrap().media();
    assert_eq!(media, sdp.media());
}

#[test]
fn rewrite_inserts_connection_after_information_line() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\ni=voice\na=ptime:20\nm=audio 4002 RTP/AVP 0\n";
    let sdp = Sdp::parse(text).unwrap();
    let out = sdp.rewrite(&[None, Some(sa("10.9.9.9:30000"))], 2);
    assert!(
        out.contains("m=audio 4000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 10.0.0.1\r\na=ptime:20\r\n"),
        "{out}"
    );
    let media = Sdp::parse(&out).unwrap().media();
    assert_eq!(media[0].rtp, Some(sa("10.0.0.1:4000")));
    assert_eq!(media[1].rtp, Some(sa("10.9.9.9:30000")));
}

#[test]
fn rewrite_with_per_stream_addresses() {
    // Two relays with different addresses: the second stream gets its own c=.
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
                m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\n";
    let sdp = Sdp::parse(text).unwrap();
    let (a, b): (SocketAddr, SocketAddr) = (sa("10.9.9.9:30000"), sa("10.8.8.8:30002"));
    let out = sdp.rewrite(&[Some(a), Some(b)], 2);
    let media = Sdp::parse(&out).unwrap().media();
    assert_eq!(media[0].rtp, Some(a));
    assert_eq!(media[1].rtp, Some(b));
    assert_eq!(
        Sdp::parse(&out)
            .unwrap()
            .to_string()
            .matches("c=IN IP4 10.9.9.9")
            .count(),
        1
    );
}
