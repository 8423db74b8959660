//! Just enough of the RTP/RTCP wire format (RFC 3550 §5.1, §6.4; RFC 5761 §4) for a
//! relay: tell RTP from RTCP on a muxed port, and read the fields that statistics
//! need. Payloads are never touched, so SRTP passes through unchanged (its header is
//! plain RTP).

/// The fixed RTP header fields, read without copying the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload: after the CSRC list and any header extension.
    pub payload_offset: usize,
    /// Payload bytes, without padding.
    pub payload_len: usize,
}

/// What a datagram on a relay socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// Version 2, at least 12 bytes, not in the RTCP packet-type range. `header` is
    /// `None` when the CSRC count, extension or padding do not fit the length: such
    /// a packet is still relayed (the receiver may understand it) but not measured.
    Rtp { header: Option<RtpHeader> },
    /// Version 2, at least 8 bytes (an empty receiver report), packet type 192-223.
    Rtcp,
    /// Anything else: STUN, ZRTP hello, noise. Not relayed.
    Invalid,
}

/// RFC 5761 §4: on a muxed port, RTCP is told from RTP by the second byte, which is
/// the RTCP packet type (SR 200, RR 201, ... , 192-223 in all) or RTP's marker bit
/// plus payload type (RTP avoids payload types 64-95 for exactly this reason).
pub fn classify(packet: &[u8]) -> Packet {
    if packet.len() < 8 || packet[0] >> 6 != 2 {
        return Packet::Invalid;
    }
    if (192..=223).contains(&packet[1]) {
        return Packet::Rtcp;
    }
    if packet.len() < 12 {
        return Packet::Invalid;
    }
    Packet::Rtp {
        header: RtpHeader::parse(packet),
    }
}

/// Whether a datagram on a dedicated RTCP port is worth relaying: version 2 and at
/// least an empty receiver report.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2
}

impl RtpHeader {
    /// Parses the header of a version 2 RTP packet; `None` when it is not one or its
    /// lengths are inconsistent.
    pub fn parse(packet: &[u8]) -> Option<RtpHeader> {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let padding = packet[0] & 0x20 != 0;
        let extension = packet[0] & 0x10 != 0;
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        if extension {
            let ext = packet.get(offset..offset + 4)?;
            offset += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = packet.len();
        if padding {
            let pad = usize::from(packet[end - 1]);
            if pad == 0 {
                return None;
            }
            end = end.checked_sub(pad)?;
        }
        if offset > end {
            return None;
        }
        Some(RtpHeader {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            seq: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload_offset: offset,
            payload_len: end - offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn plain_header() {
        let p = rtp(7, 160, &[1, 2, 3]);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(
            (h.seq, h.timestamp, h.ssrc, h.payload_type),
            (7, 160, 0x1234_5678, 0)
        );
        assert_eq!((h.payload_offset, h.payload_len), (12, 3));
        assert_eq!(classify(&p), Packet::Rtp { header: Some(h) });
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut p = rtp(1, 2, &[]);
        p[0] |= 0x20 | 0x10 | 1; // padding, extension, one CSRC
        p[1] = 0x80 | 101; // marker, telephone-event
        p.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-word extension
        p.extend_from_slice(&[5, 6, 7, 8]); // payload
        p.extend_from_slice(&[0, 0, 3]); // padding, count 3
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(h.payload_type, 101);
        assert_eq!((h.payload_offset, h.payload_len), (24, 4));
    }

    #[test]
    fn inconsistent_lengths_are_still_rtp() {
        let mut p = rtp(1, 2, &[]);
        p[0] |= 0x0f; // 15 CSRCs that are not there
        assert_eq!(RtpHeader::parse(&p), None);
        assert_eq!(classify(&p), Packet::Rtp { header: None });
        let mut p = rtp(1, 2, &[0]);
        p[0] |= 0x20; // padding count 0
        assert_eq!(RtpHeader::parse(&p), None);
    }

    #[test]
    fn rtcp_and_garbage() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(classify(&rr), Packet::Rtcp);
        assert!(is_rtcp(&rr));
        // STUN binding request: first two bits 0.
        let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
        assert_eq!(classify(&stun), Packet::Invalid);
        assert!(!is_rtcp(&stun));
        assert_eq!(
            classify(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            Packet::Invalid
        );
        assert_eq!(classify(&[0x80, 201, 0]), Packet::Invalid);
    }
}

/// What round-trip measurement needs from one RTCP compound packet (RFC 3550
/// §6.4): the NTP timestamp of a sender report, as the middle 32 bits that
/// receivers echo back, and the (LSR, DLSR) of up to four report blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpTimes {
    pub sr_ntp_middle: Option<u32>,
    pub blocks: [(u32, u32); 4],
    pub block_count: usize,
}

/// Reads the SR timestamp and report-block LSR/DLSR fields of a compound RTCP
/// packet; stops quietly at anything malformed (SRTCP's encrypted part included).
pub fn rtcp_times(packet: &[u8]) -> RtcpTimes {
    let u32_at = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut out = RtcpTimes::default();
    let mut at = 0;
    while at + 8 <= packet.len() && packet[at] >> 6 == 2 {
        let count = usize::from(packet[at] & 0x1f);
        let kind = packet[at + 1];
        let len = (usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]])) + 1) * 4;
        if at + len > packet.len() {
            break;
        }
        let body = &packet[at..at + len];
        let blocks_at = match kind {
            200 if len >= 28 => {
                out.sr_ntp_middle
                    .get_or_insert((u32_at(body, 8) << 16) | (u32_at(body, 12) >> 16));
                Some(28)
            }
            201 => Some(8),
            _ => None,
        };
        if let Some(first) = blocks_at {
            for k in 0..count {
                let b = first + 24 * k;
                if b + 24 > body.len() || out.block_count == out.blocks.len() {
                    break;
                }
                out.blocks[out.block_count] = (u32_at(body, b + 16), u32_at(body, b + 20));
                out.block_count += 1;
            }
        }
        at += len;
    }
    out
}

#[cfg(test)]
mod rtcp_tests {
    use super::*;

    #[test]
    fn sender_report_timestamps_and_report_blocks_are_read() {
        // SR with one report block, then an SDES chunk.
        let mut p = vec![0x81, 200, 0, 12];
        p.extend_from_slice(&0x1111_1111u32.to_be_bytes()); // sender SSRC
        p.extend_from_slice(&0xaabb_ccddu32.to_be_bytes()); // NTP seconds
        p.extend_from_slice(&0xeeff_0011u32.to_be_bytes()); // NTP fraction
        p.extend_from_slice(&[0; 12]); // RTP timestamp, counts
        p.extend_from_slice(&0x2222_2222u32.to_be_bytes()); // block: SSRC
        p.extend_from_slice(&[0; 12]); // loss, highest seq, jitter
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // LSR
        p.extend_from_slice(&0x0001_8000u32.to_be_bytes()); // DLSR: 1.5 s
        p.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 1]);
        let t = rtcp_times(&p);
        assert_eq!(t.sr_ntp_middle, Some(0xccdd_eeff));
        assert_eq!(
            (t.block_count, t.blocks[0]),
            (1, (0x1234_5678, 0x0001_8000))
        );
        // Truncated: nothing read past the end.
        assert_eq!(rtcp_times(&p[..20]).block_count, 0);
    }
}
