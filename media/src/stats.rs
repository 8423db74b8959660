//! RFC 3550 receiver statistics, sans-IO.
//!
//! The relay sees every packet of a call, so it is the one place that can tell an
//! operator whether a bad call was the network's fault. The numbers follow RFC 3550
//! appendix A exactly (A.1 sequence tracking, A.3 loss, A.8 jitter) so that they agree
//! with what the phones themselves report in RTCP receiver reports and with tools
//! like Wireshark's RTP analysis.
//!
//! Arrival times are plain `f64` seconds on any epoch the caller likes: the relay
//! passes seconds since the session started, tests pass made-up times, and nothing
//! in here reads a clock.

/// A snapshot of what one phone sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Packets fed in, including ones the sequence tracker set aside (a lone packet
    /// far out of sequence, RFC 3550 A.1 `bad_seq`).
    pub packets: u64,
    /// UDP payload bytes (RTP header included) of those packets.
    pub bytes: u64,
    /// Packets the sequence numbers say should have arrived (RFC 3550 A.3).
    pub expected: u64,
    /// `expected - received`; negative when duplicates outnumber losses (A.3).
    pub lost: i64,
    /// Interarrival jitter (A.8) in milliseconds, at the last packet.
    pub jitter_ms: f64,
    /// The highest jitter seen during the stream, in milliseconds.
    pub max_jitter_ms: f64,
    /// The longest run of sequence numbers skipped at once (a forward jump of n
    /// counts n - 1); 0 for a stream without holes.
    pub max_seq_gap: u32,
    /// Packets that arrived with a sequence number at or below the highest one seen
    /// (late or duplicated).
    pub reordered: u64,
}

impl StreamStats {
    /// Fraction of expected packets that never arrived, 0.0..=1.0.
    pub fn loss_fraction(&self) -> f64 {
        if self.expected == 0 || self.lost <= 0 {
            return 0.0;
        }
        (self.lost as f64 / self.expected as f64).min(1.0)
    }

    /// An estimate of the listening MOS (1.0..=4.5) from loss and jitter with the
    /// ITU-T G.107 E-model, for G.711 with packet loss concealment and no network
    /// delay beyond what jitter implies. See [`StreamStats::mos_for`].
    pub fn mos(&self) -> f64 {
        self.mos_for(Codec::G711, 0.0)
    }

    /// The ITU-T G.107 E-model's MOS (1.0..=4.5) for this stream sent in `codec`
    /// with `network_ms` of one-way network delay: the codec's equipment
    /// impairment and loss robustness (ITU-T G.113 Appendix I), the measured loss,
    /// and a delay of `network_ms` plus a jitter buffer twice the measured jitter
    /// plus the codec's packetization and look-ahead. It ranks calls; it is not a
    /// PESQ score.
    pub fn mos_for(&self, codec: Codec, network_ms: f64) -> f64 {
        let (ie, bpl, codec_ms) = codec.impairment();
        let ppl = self.loss_fraction() * 100.0;
        let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
        let delay = network_ms.max(0.0) + 2.0 * self.jitter_ms + codec_ms;
        let id = 0.024 * delay
            + if delay > 177.3 {
                0.11 * (delay - 177.3)
            } else {
                0.0
            };
        let r = (93.2 - ie_eff - id).clamp(0.0, 100.0);
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}

/// Codecs the E-model knows the impairment of, by their static RTP payload types
/// (RFC 3551); anything else (opus, dynamic types) is rated like G.711.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// PCMU, PCMA, and G.722 (rated on the narrowband scale, where it is no
    /// worse than G.711).
    G711,
    G729,
    G723,
}

impl Codec {
    pub fn from_payload_type(pt: u8) -> Codec {
        match pt {
            18 => Codec::G729,
            4 => Codec::G723,
            _ => Codec::G711,
        }
    }

    /// (Ie, Bpl, packetization + look-ahead in ms), ITU-T G.113 Appendix I values
    /// with the usual packet sizes (20 ms; 30 ms for G.723.1).
    fn impairment(self) -> (f64, f64, f64) {
        match self {
            Codec::G711 => (0.0, 25.1, 20.0),
            Codec::G729 => (11.0, 19.0, 25.0),
            Codec::G723 => (15.0, 16.1, 37.5),
        }
    }
}

/// A.1: a jump this far ahead is taken as loss, not as a restarted sender.
const MAX_DROPOUT: u16 = 3000;
/// A.1: a packet up to this far behind the highest is late, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;

/// Per-stream receiver state. Feed it every RTP packet from one sender with
/// [`ReceiverStats::on_packet`]; read it with [`ReceiverStats::snapshot`].
#[derive(Debug, Clone, Default)]
pub struct ReceiverStats {
    started: bool,
    base_seq: u64,
    max_seq: u16,
    /// Wraps of the sequence number, i.e. A.1 `cycles / RTP_SEQ_MOD`.
    cycles: u64,
    /// A.1 `bad_seq`: the sequence number that would confirm a sender restart.
    bad_seq: Option<u16>,
    /// Packets counted by the sequence tracker since the last (re)start.
    received: u64,
    /// Expected and received of the sender's earlier incarnations, so a restart
    /// (new SSRC after a transfer, a phone reboot) does not erase loss history.
    prior_expected: u64,
    prior_received: u64,
    packets: u64,
    bytes: u64,
    reordered: u64,
    max_seq_gap: u32,
    /// Jitter in seconds (A.8 keeps timestamp units; seconds let the clock rate vary).
    jitter: f64,
    max_jitter: f64,
    /// Arrival time and RTP timestamp of the previous packet, for the A.8 difference.
    last: Option<(f64, u32)>,
}

impl ReceiverStats {
    pub fn new() -> ReceiverStats {
        ReceiverStats::default()
    }

    /// One received packet: its sequence number and timestamp, when it arrived (in
    /// seconds), the RTP clock rate of its payload (8000 for PCMU/PCMA/G.722), and its
    /// size in bytes. A clock rate of 0 skips the jitter update.
    pub fn on_packet(
        &mut self,
        seq: u16,
        rtp_timestamp: u32,
        arrival: f64,
        clock_rate: u32,
        len: usize,
    ) {
        self.packets += 1;
        self.bytes += len as u64;
        if !self.update_seq(seq) {
            return;
        }
        self.update_jitter(rtp_timestamp, arrival, clock_rate);
    }

    /// Everything measured so far.
    pub fn snapshot(&self) -> StreamStats {
        let expected = self.prior_expected + self.expected();
        let received = self.prior_received + self.received;
        StreamStats {
            packets: self.packets,
            bytes: self.bytes,
            expected,
            lost: expected as i64 - received as i64,
            jitter_ms: self.jitter * 1000.0,
            max_jitter_ms: self.max_jitter * 1000.0,
            max_seq_gap: self.max_seq_gap,
            reordered: self.reordered,
        }
    }

    fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.cycles * SEQ_MOD + u64::from(self.max_seq) + 1).saturating_sub(self.base_seq)
    }

    fn init_seq(&mut self, seq: u16) {
        self.prior_expected += self.expected();
        self.prior_received += self.received;
        self.started = true;
        self.base_seq = u64::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = None;
        self.received = 0;
        // Timestamps of a restarted sender have nothing to do with the old ones.
        self.last = None;
    }

    /// RFC 3550 A.1 `update_seq` without the probation period (the relay only feeds
    /// packets from the latched source). Returns false for a packet set aside.
    fn update_seq(&mut self, seq: u16) -> bool {
        if !self.started {
            self.init_seq(seq);
            self.received = 1;
            return true;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta == 0 {
            // Duplicate of the newest packet.
            self.reordered += 1;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1;
            }
            self.max_seq_gap = self.max_seq_gap.max(u32::from(udelta) - 1);
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // A very large jump. Two in a row mean the sender restarted its sequence;
            // one alone is a stray packet.
            if self.bad_seq == Some(seq) {
                self.init_seq(seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                return false;
            }
        } else {
            // Late (reordered) or a duplicate of an older packet.
            self.reordered += 1;
        }
        self.received += 1;
        true
    }

    /// RFC 3550 A.8: D = (Rj - Ri) - (Sj - Si), J += (|D| - J) / 16, in seconds.
    fn update_jitter(&mut self, ts: u32, arrival: f64, clock_rate: u32) {
        if clock_rate == 0 {
            return;
        }
        if let Some((last_arrival, last_ts)) = self.last {
            // Wrapping difference: timestamps wrap at 2^32 like sequence numbers do.
            let ts_delta = f64::from(ts.wrapping_sub(last_ts) as i32) / f64::from(clock_rate);
            let d = (arrival - last_arrival) - ts_delta;
            self.jitter += (d.abs() - self.jitter) / 16.0;
            self.max_jitter = self.max_jitter.max(self.jitter);
        }
        self.last = Some((arrival, ts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: f64 = 0.020;
    const SAMPLES: u32 = 160;

    /// Feeds packets `seqs` of a 20 ms PCMU stream, each arriving on time.
    fn feed(stats: &mut ReceiverStats, first_seq: u16, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            let n = seq.wrapping_sub(first_seq) as u32;
            stats.on_packet(seq, n * SAMPLES, f64::from(n) * PTIME, 8000, 172);
        }
    }

    #[test]
    fn in_order_stream() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 100, 100..200);
        let snap = s.snapshot();
        assert_eq!(snap.packets, 100);
        assert_eq!(snap.bytes, 17_200);
        assert_eq!(snap.expected, 100);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.max_seq_gap, 0);
        assert_eq!(snap.reordered, 0);
        assert!(snap.jitter_ms.abs() < 1e-6, "{}", snap.jitter_ms);
        assert!(snap.mos() > 4.3, "{}", snap.mos());
    }

    #[test]
    fn empty_stats() {
        let snap = ReceiverStats::new().snapshot();
        assert_eq!((snap.packets, snap.expected, snap.lost), (0, 0, 0));
        assert_eq!(snap.loss_fraction(), 0.0);
    }

    #[test]
    fn losses() {
        let mut s = ReceiverStats::new();
        // 1000..1100 without 1010..1015 (5) and 1050 (1).
        feed(
            &mut s,
            1000,
            (1000..1100).filter(|&q| !(1010..1015).contains(&q) && q != 1050),
        );
        let snap = s.snapshot();
        assert_eq!(snap.expected, 100);
        assert_eq!(snap.packets, 94);
        assert_eq!(snap.lost, 6);
        assert_eq!(snap.max_seq_gap, 5);
        assert!((snap.loss_fraction() - 0.06).abs() < 1e-9);
        assert!(snap.mos() < 4.0, "{}", snap.mos());
    }

    #[test]
    fn reordering_loses_nothing() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 0, [0, 1, 3, 2, 4, 6, 5, 7]);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 8);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.reordered, 2);
        assert_eq!(snap.max_seq_gap, 1);
    }

    #[test]
    fn duplicates_make_loss_negative() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 0, [0, 1, 1, 2, 2, 3]);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 4);
        assert_eq!(snap.lost, -2);
        assert_eq!(snap.loss_fraction(), 0.0);
    }

    #[test]
    fn sequence_wraps_at_65535() {
        let mut s = ReceiverStats::new();
        let seqs = (65500..=u16::MAX).chain(0..100);
        feed(&mut s, 65500, seqs);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 136);
        assert_eq!(snap.packets, 136);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.max_seq_gap, 0);
        assert!(snap.jitter_ms.abs() < 1e-6);
    }

    #[test]
    fn loss_across_the_wrap() {
        let mut s = ReceiverStats::new();
        let seqs = (65530..=u16::MAX).chain(3..10);
        feed(&mut s, 65530, seqs);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 16);
        assert_eq!(snap.lost, 3);
        assert_eq!(snap.max_seq_gap, 3);
    }

    #[test]
    fn late_packet_across_the_wrap() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 65534, [65534, 0, 65535, 1]);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 4);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.reordered, 1);
    }

    #[test]
    fn restarted_sender_keeps_loss_history() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 0, (0..50).filter(|&q| q != 10)); // 1 lost
        // The sender restarts far away: one stray packet is set aside, the second
        // in sequence confirms the restart.
        feed(&mut s, 40_000, 40_000..40_020);
        let snap = s.snapshot();
        assert_eq!(snap.packets, 69);
        assert_eq!(snap.expected, 50 + 19);
        assert_eq!(snap.lost, 1);
    }

    #[test]
    fn lone_stray_packet_is_set_aside() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 0, 0..10);
        feed(&mut s, 0, [30_000]);
        feed(&mut s, 0, 10..20);
        let snap = s.snapshot();
        assert_eq!(snap.expected, 20);
        assert_eq!(snap.lost, 0);
        assert_eq!(snap.packets, 21);
    }

    #[test]
    fn perfectly_paced_stream_has_no_jitter_even_across_timestamp_wrap() {
        let mut s = ReceiverStats::new();
        let ts0 = u32::MAX - 160 * 10;
        for n in 0..100u32 {
            s.on_packet(
                n as u16,
                ts0.wrapping_add(n * 160),
                5.0 + f64::from(n) * 0.02,
                8000,
                172,
            );
        }
        assert!(
            s.snapshot().jitter_ms.abs() < 1e-6,
            "{}",
            s.snapshot().jitter_ms
        );
    }

    #[test]
    fn jittery_stream() {
        let mut s = ReceiverStats::new();
        // Every other packet arrives 10 ms late: |D| = 10 ms on every packet, so J
        // converges on 10 ms.
        for n in 0..500u32 {
            let late = if n % 2 == 1 { 0.010 } else { 0.0 };
            s.on_packet(n as u16, n * 160, f64::from(n) * 0.02 + late, 8000, 172);
        }
        let snap = s.snapshot();
        assert!((snap.jitter_ms - 10.0).abs() < 0.1, "{}", snap.jitter_ms);
        assert!(snap.max_jitter_ms >= snap.jitter_ms);
        assert!(snap.mos() < ReceiverStats::new().snapshot().mos());
    }

    #[test]
    fn jitter_uses_the_clock_rate() {
        // Same wall-clock pattern at 48 kHz (opus): the jitter in ms is the same.
        let mut s = ReceiverStats::new();
        for n in 0..500u32 {
            let late = if n % 2 == 1 { 0.010 } else { 0.0 };
            s.on_packet(n as u16, n * 960, f64::from(n) * 0.02 + late, 48_000, 100);
        }
        assert!((s.snapshot().jitter_ms - 10.0).abs() < 0.1);
    }

    #[test]
    fn zero_clock_rate_skips_jitter() {
        let mut s = ReceiverStats::new();
        s.on_packet(0, 0, 0.0, 0, 12);
        s.on_packet(1, 0, 1.0, 0, 12);
        assert_eq!(s.snapshot().jitter_ms, 0.0);
        assert_eq!(s.snapshot().expected, 2);
    }

    #[test]
    fn the_e_model_rates_codecs_and_delay() {
        let clean = StreamStats {
            expected: 1000,
            lost: 0,
            ..StreamStats::default()
        };
        let g711 = clean.mos_for(Codec::G711, 0.0);
        assert!((4.35..=4.45).contains(&g711), "{g711}");
        assert!(
            clean.mos_for(Codec::G729, 0.0) < g711 - 0.2,
            "G.729 costs Ie = 11"
        );
        // Half a second of one-way delay is a bad call whatever the codec.
        assert!(clean.mos_for(Codec::G711, 500.0) < 3.0);
        let lossy = StreamStats {
            expected: 1000,
            lost: 50,
            ..StreamStats::default()
        };
        let m = lossy.mos_for(Codec::G711, 0.0);
        assert!((3.5..4.0).contains(&m), "5 % loss: {m}");
        assert_eq!(Codec::from_payload_type(18), Codec::G729);
        assert_eq!(Codec::from_payload_type(111), Codec::G711);
    }
}
