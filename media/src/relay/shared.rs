//! State shared between a session's relay task and its control handle.
//!
//! The task is the only writer of everything measured per packet, so it publishes
//! with relaxed stores into atomics it alone writes: no lock and no read-modify-write
//! on the packet path, and [`super::Session::stats`] always reads the current values
//! (fields of one snapshot may be one packet apart from each other, which no report
//! can notice). Addresses are different: they are wider than one atomic (an IPv6
//! socket address is 28 bytes) and change a handful of times per call, so they sit
//! behind Mutexes that are locked only when they change; the task learns of a change
//! from a generation counter it checks with one atomic load per packet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::stats::StreamStats;

/// Where to send media for one side, from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) rtp: SocketAddr,
    /// Equal to `rtp` under rtcp-mux.
    pub(crate) rtcp: SocketAddr,
    pub(crate) mux: bool,
}

/// Packet counters of one side: what its phone sent and what became of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// RTP packets received from the phone's accepted source.
    pub rtp_received: u64,
    /// RTCP packets received from the phone's accepted source (on either port).
    pub rtcp_received: u64,
    /// RTP packets sent on to the other side.
    pub rtp_forwarded: u64,
    /// RTCP packets sent on to the other side.
    pub rtcp_forwarded: u64,
    /// Packets dropped because the other side's address is not known yet.
    pub no_destination: u64,
    /// Packets dropped because they came from a source other than the latched one.
    pub foreign_source: u64,
    /// Packets dropped as neither RTP nor RTCP (too short, not version 2).
    pub invalid: u64,
    /// Packets dropped because the destination is one of the relay's own sockets
    /// (an SDP that pointed one side at the relay itself would loop forever).
    pub looped: u64,
    /// Sends that failed (socket buffer full, unreachable network).
    pub send_errors: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    pub(crate) rtp_received: AtomicU64,
    pub(crate) rtcp_received: AtomicU64,
    pub(crate) rtp_forwarded: AtomicU64,
    pub(crate) rtcp_forwarded: AtomicU64,
    pub(crate) no_destination: AtomicU64,
    pub(crate) foreign_source: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) looped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) recv_errors: AtomicU64,
}

/// Adds one to a counter that only the relay task writes: a plain load and store,
/// because there is no other writer to race with.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

impl AtomicCounters {
    pub(crate) fn load(&self) -> Counters {
        Counters {
            rtp_received: self.rtp_received.load(Relaxed),
            rtcp_received: self.rtcp_received.load(Relaxed),
            rtp_forwarded: self.rtp_forwarded.load(Relaxed),
            rtcp_forwarded: self.rtcp_forwarded.load(Relaxed),
            no_destination: self.no_destination.load(Relaxed),
            foreign_source: self.foreign_source.load(Relaxed),
            invalid: self.invalid.load(Relaxed),
            looped: self.looped.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            recv_errors: self.recv_errors.load(Relaxed),
        }
    }
}

/// The last [`StreamStats`] of one side, field by field.
#[derive(Debug, Default)]
pub(crate) struct PublishedStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    expected: AtomicU64,
    lost: AtomicU64,
    jitter_ms: AtomicU64,
    max_jitter_ms: AtomicU64,
    max_seq_gap: AtomicU32,
    reordered: AtomicU64,
}

impl PublishedStats {
    pub(crate) fn store(&self, s: &StreamStats) {
        self.packets.store(s.packets, Relaxed);
        self.bytes.store(s.bytes, Relaxed);
        self.expected.store(s.expected, Relaxed);
        self.lost.store(s.lost as u64, Relaxed);
        self.jitter_ms.store(s.jitter_ms.to_bits(), Relaxed);
        self.max_jitter_ms.store(s.max_jitter_ms.to_bits(), Relaxed);
        self.max_seq_gap.store(s.max_seq_gap, Relaxed);
        self.reordered.store(s.reordered, Relaxed);
    }

    pub(crate) fn load(&self) -> StreamStats {
        StreamStats {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            expected: self.expected.load(Relaxed),
            lost: self.lost.load(Relaxed) as i64,
            jitter_ms: f64::from_bits(self.jitter_ms.load(Relaxed)),
            max_jitter_ms: f64::from_bits(self.max_jitter_ms.load(Relaxed)),
            max_seq_gap: self.max_seq_gap.load(Relaxed),
            reordered: self.reordered.load(Relaxed),
        }
    }
}

/// What the task publishes about one side.
#[derive(Debug)]
pub(crate) struct SideShared {
    pub(crate) stats: PublishedStats,
    pub(crate) counters: AtomicCounters,
    /// RTP clock rate for jitter, set by the control side.
    pub(crate) clock_rate: AtomicU32,
    /// Round trip between the relay and this side's phone in microseconds, from
    /// its RTCP reports (RFC 3550 §6.4.1); 0 until measured.
    pub(crate) rtt_us: AtomicU32,
    /// The payload type of this side's last RTP (telephone-event aside).
    pub(crate) payload_type: AtomicU8,
}

pub(crate) struct Shared {
    pub(crate) epoch: Instant,
    /// Nanoseconds after `epoch` of the last RTP packet from either side.
    pub(crate) last_rtp: AtomicU64,
    pub(crate) sides: [SideShared; 2],
    /// Bumped after every change to `remotes`.
    pub(crate) remote_generation: AtomicU64,
    pub(crate) remotes: Mutex<[Option<Remote>; 2]>,
    /// Latched RTP sources, written by the task when a latch moves.
    pub(crate) latched: Mutex<[Option<SocketAddr>; 2]>,
    /// Per side: RTP from that phone goes back to it instead of across (Echo()).
    pub(crate) echo: [AtomicBool; 2],
    /// Per side: the RTP payload type of telephone-event (RFC 4733); 0 for none.
    pub(crate) dtmf_pt: [AtomicU8; 2],
    /// Told of every digit a phone sends as telephone-event.
    pub(crate) digit_sink: Mutex<Option<super::DigitSink>>,
    /// Recordings running on this session, by id; the task copies them when
    /// `tap_generation` moves.
    pub(crate) taps: Mutex<Vec<(u64, Arc<dyn super::Tap>)>>,
    pub(crate) tap_generation: AtomicU64,
}

impl Shared {
    pub(crate) fn new(epoch: Instant) -> Shared {
        let side = || SideShared {
            stats: PublishedStats::default(),
            counters: AtomicCounters::default(),
            clock_rate: AtomicU32::new(8000),
            rtt_us: AtomicU32::new(0),
            payload_type: AtomicU8::new(0),
        };
        Shared {
            epoch,
            last_rtp: AtomicU64::new(0),
            sides: [side(), side()],
            remote_generation: AtomicU64::new(0),
            remotes: Mutex::new([None; 2]),
            latched: Mutex::new([None; 2]),
            echo: [AtomicBool::new(false), AtomicBool::new(false)],
            dtmf_pt: [AtomicU8::new(0), AtomicU8::new(0)],
            digit_sink: Mutex::new(None),
            taps: Mutex::new(Vec::new()),
            tap_generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn mark_rtp(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos();
        self.last_rtp
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn idle_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_nanos(self.last_rtp.load(Relaxed));
        now.saturating_duration_since(last)
    }
}

/// Locks a Mutex that holds plain values, ignoring poison: every writer stores a
/// whole value, so a panic elsewhere cannot leave it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
