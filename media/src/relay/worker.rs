//! The task that moves one session's packets.
//!
//! One task owns all four sockets of a session (RTP and RTCP of each side) and polls
//! them with one receive buffer. Owning both sides in one place is what lets the
//! per-packet path go without locks: the latches, the remote addresses and the
//! receiver statistics are plain fields of the task, and the control handle only
//! sees what the task publishes (see `shared`). At PBX rates (50 packets/s per
//! direction) one task per call is far below what a core can do; the sockets are
//! polled in rotation so a flood on one cannot starve the others, and tokio's
//! cooperative budget makes the task yield under sustained load.
//!
//! Per packet: one `recvfrom`, one `Instant::now()`, a few relaxed atomic stores and
//! one `sendto`; no allocation.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use super::Tap;
use super::latch::{Latch, Verdict};
use super::pool::PortLease;
use super::shared::{Remote, Shared, bump, lock};
use crate::rtp::{self, Packet};
use crate::stats::ReceiverStats;

/// Larger than any RTP packet that fits an Ethernet MTU, with room for jumbo
/// frames and loopback tests; a longer datagram would be truncated.
const RECV_BUFFER: usize = 4096;

/// Sender reports remembered per side for round-trip matching (one every ~5 s).
const SR_MEMORY: usize = 8;

/// Flips the SSRC of echoed packets (any constant but zero will do).
const ECHO_SSRC_MASK: u32 = 0x5ec0_0e40;

/// Socket index: side A RTP, side A RTCP, side B RTP, side B RTCP.
const fn rtp_socket(side: usize) -> usize {
    side * 2
}

const fn rtcp_socket(side: usize) -> usize {
    side * 2 + 1
}

pub(crate) struct Worker {
    sockets: [Arc<UdpSocket>; 4],
    locals: [SocketAddr; 4],
    shared: Arc<Shared>,
    generation: u64,
    remotes: [Option<Remote>; 2],
    latches: [Latch; 4],
    stats: [ReceiverStats; 2],
    /// The socket to poll first next time (rotation for fairness).
    next: usize,
    /// Per side, the RTP timestamp of the last telephone-event reported: an event's
    /// packets share one timestamp (RFC 4733 §2.5.1.2), so each digit is told once.
    last_event: [Option<u32>; 2],
    /// Per side, the sender reports relayed to that side's phone: (NTP middle 32
    /// bits, when) — what its receiver reports will echo as LSR.
    sr_sent: [[(u32, Instant); SR_MEMORY]; 2],
    sr_next: [usize; 2],
    /// The recordings of this session, refreshed when `tap_generation` moves.
    taps: Vec<Arc<dyn Tap>>,
    tap_generation: u64,
    /// Declared last so it drops after the sockets: it parks a pair only once no
    /// one else holds its sockets.
    _lease: PortLease,
}

impl Worker {
    /// `locals` are the sockets' own addresses, as bound.
    pub(crate) fn new(
        sockets: [Arc<UdpSocket>; 4],
        locals: [SocketAddr; 4],
        shared: Arc<Shared>,
        lease: PortLease,
    ) -> Worker {
        let shared_epoch = shared.epoch;
        Worker {
            sockets,
            locals,
            shared,
            generation: 0,
            remotes: [None; 2],
            latches: Default::default(),
            stats: Default::default(),
            next: 0,
            last_event: [None; 2],
            sr_sent: [[(0, shared_epoch); SR_MEMORY]; 2],
            sr_next: [0; 2],
            taps: Vec::new(),
            tap_generation: 0,
            _lease: lease,
        }
    }

    /// Runs until the task is aborted (when the [`super::Session`] drops).
    pub(crate) async fn run(mut self) {
        let mut buf = [0u8; RECV_BUFFER];
        loop {
            let (index, result) = poll_fn(|cx| self.poll_recv(cx, &mut buf)).await;
            match result {
                Ok((len, src)) => self.handle(index, &buf[..len], src, Instant::now()),
                Err(e) => {
                    bump(&self.shared.sides[index / 2].counters.recv_errors);
                    tracing::debug!(socket = %self.locals[index], error = %e, "RTP receive failed");
                }
            }
        }
    }

    /// Polls the sockets in rotation into `buf`. A socket that is not ready leaves
    /// `buf` untouched, so one buffer serves all four.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<(usize, io::Result<(usize, SocketAddr)>)> {
        for k in 0..self.sockets.len() {
            let i = (self.next + k) % self.sockets.len();
            let mut read = ReadBuf::new(buf);
            if let Poll::Ready(result) = self.sockets[i].poll_recv_from(cx, &mut read) {
                self.next = (i + 1) % self.sockets.len();
                return Poll::Ready((i, result.map(|src| (read.filled().len(), src))));
            }
        }
        Poll::Pending
    }

    /// Picks up a `set_remote`: one atomic load per packet, a lock only on change.
    fn refresh_remotes(&mut self) {
        let generation = self.shared.remote_generation.load(Acquire);
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let remotes = *lock(&self.shared.remotes);
        for (side, new) in remotes.iter().enumerate() {
            let old = &self.remotes[side];
            let moved = old.map(|r| (r.rtp, r.rtcp)) != new.map(|r| (r.rtp, r.rtcp));
            if moved {
                // A new address in SDP (re-INVITE after a network change, transfer):
                // the next packet latches afresh instead of waiting out the old one.
                self.latches[rtp_socket(side)].reset();
                self.latches[rtcp_socket(side)].reset();
                lock(&self.shared.latched)[side] = None;
            }
        }
        self.remotes = remotes;
    }

    /// Picks up a recording started or stopped: one atomic load per packet.
    fn refresh_taps(&mut self) {
        let generation = self.shared.tap_generation.load(Acquire);
        if generation != self.tap_generation {
            self.tap_generation = generation;
            self.taps = lock(&self.shared.taps)
                .iter()
                .map(|(_, t)| Arc::clone(t))
                .collect();
        }
    }

    fn handle(&mut self, index: usize, packet: &[u8], src: SocketAddr, now: Instant) {
        self.refresh_remotes();
        self.refresh_taps();
        let side = index / 2;
        let other = 1 - side;
        let on_rtcp_port = index % 2 == 1;
        let shared = &*self.shared;
        let counters = &shared.sides[side].counters;

        let kind = if on_rtcp_port {
            if rtp::is_rtcp(packet) {
                Packet::Rtcp
            } else {
                Packet::Invalid
            }
        } else {
            rtp::classify(packet)
        };
        if kind == Packet::Invalid {
            bump(&counters.invalid);
            return;
        }

        let announced = self.remotes[side].map(|r| if on_rtcp_port { r.rtcp } else { r.rtp });
        match self.latches[index].on_packet(src, announced, now) {
            Verdict::Accept => {}
            Verdict::Reject => {
                bump(&counters.foreign_source);
                return;
            }
            Verdict::Latched => {
                if !on_rtcp_port {
                    lock(&shared.latched)[side] = Some(src);
                }
                tracing::debug!(socket = %self.locals[index], %src, "media source latched");
            }
        }

        let (out, dest) = match kind {
            Packet::Rtp { header } => {
                bump(&counters.rtp_received);
                if let Some(h) = header {
                    let arrival = now.saturating_duration_since(shared.epoch).as_secs_f64();
                    let rate = shared.sides[side].clock_rate.load(Relaxed);
                    let stats = &mut self.stats[side];
                    stats.on_packet(h.seq, h.timestamp, arrival, rate, packet.len());
                    shared.sides[side].stats.store(&stats.snapshot());
                    let dtmf = shared.dtmf_pt[side].load(Relaxed);
                    if dtmf == 0 || h.payload_type != dtmf {
                        shared.sides[side]
                            .payload_type
                            .store(h.payload_type, Relaxed);
                    }
                    if dtmf != 0 && h.payload_type == dtmf {
                        telephone_event(
                            &mut self.last_event[side],
                            shared,
                            side,
                            h.timestamp,
                            &packet[h.payload_offset..],
                        );
                    }
                    let mut consumed = false;
                    for tap in &self.taps {
                        consumed |= tap.push(side, &h, packet, now);
                    }
                    if consumed {
                        shared.mark_rtp(now);
                        return;
                    }
                }
                shared.mark_rtp(now);
                if shared.echo[side].load(Relaxed) {
                    self.echo(index, packet, src);
                    return;
                }
                (rtp_socket(other), self.rtp_destination(other))
            }
            Packet::Rtcp => {
                bump(&counters.rtcp_received);
                round_trip(
                    &mut self.sr_sent,
                    &mut self.sr_next,
                    shared,
                    side,
                    packet,
                    now,
                );
                if shared.echo[side].load(Relaxed) {
                    // The phone's own reports are no use to it; the echo sends none.
                    return;
                }
                match self.remotes[other] {
                    Some(r) if r.mux => (rtp_socket(other), self.rtp_destination(other)),
                    _ => (rtcp_socket(other), self.rtcp_destination(other)),
                }
            }
            Packet::Invalid => return,
        };

        let Some(dest) = dest else {
            bump(&counters.no_destination);
            return;
        };
        if self.locals.contains(&dest) {
            bump(&counters.looped);
            return;
        }
        // try_send: a full socket buffer drops this packet rather than stalling the
        // other direction; late audio is no better than lost audio.
        match self.sockets[out].try_send_to(packet, dest) {
            Ok(_) if kind == Packet::Rtcp => bump(&counters.rtcp_forwarded),
            Ok(_) => bump(&counters.rtp_forwarded),
            Err(_) => bump(&counters.send_errors),
        }
    }

    /// Sends an RTP packet back where it came from (Echo()), under another SSRC: a
    /// phone that sees its own SSRC arrive would take it for a loop or a collision
    /// (RFC 3550 §8.2) and drop it.
    fn echo(&mut self, index: usize, packet: &[u8], src: SocketAddr) {
        let mut copy = [0u8; RECV_BUFFER];
        let copy = &mut copy[..packet.len()];
        copy.copy_from_slice(packet);
        for (b, k) in copy[8..12].iter_mut().zip(ECHO_SSRC_MASK.to_be_bytes()) {
            *b ^= k;
        }
        let counters = &self.shared.sides[index / 2].counters;
        match self.sockets[index].try_send_to(copy, src) {
            Ok(_) => bump(&counters.rtp_forwarded),
            Err(_) => bump(&counters.send_errors),
        }
    }

    /// Where RTP for `side`'s phone goes: its latched source, else its SDP address.
    fn rtp_destination(&self, side: usize) -> Option<SocketAddr> {
        self.latches[rtp_socket(side)]
            .addr()
            .or(self.remotes[side].map(|r| r.rtp))
    }

    fn rtcp_destination(&self, side: usize) -> Option<SocketAddr> {
        self.latches[rtcp_socket(side)]
            .addr()
            .or(self.remotes[side].map(|r| r.rtcp))
    }
}

/// RTCP from `side`'s phone: its report blocks answer sender reports we relayed
/// to it (LSR), which gives the relay-to-phone round trip: now, minus when the SR
/// went out, minus the phone's DLSR. Its own SR is remembered for the other side's
/// answer.
fn round_trip(
    sr_sent: &mut [[(u32, Instant); SR_MEMORY]; 2],
    sr_next: &mut [usize; 2],
    shared: &Shared,
    side: usize,
    packet: &[u8],
    now: Instant,
) {
    let times = rtp::rtcp_times(packet);
    for &(lsr, dlsr) in &times.blocks[..times.block_count] {
        if lsr == 0 {
            continue;
        }
        if let Some(&(_, sent)) = sr_sent[side].iter().find(|(m, _)| *m == lsr) {
            let held = std::time::Duration::from_micros(u64::from(dlsr) * 1_000_000 / 65_536);
            let rtt = now.saturating_duration_since(sent).saturating_sub(held);
            let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
            shared.sides[side].rtt_us.store(us, Relaxed);
        }
    }
    if let Some(middle) = times.sr_ntp_middle {
        let other = 1 - side;
        sr_sent[other][sr_next[other] % SR_MEMORY] = (middle, now);
        sr_next[other] += 1;
    }
}

/// A telephone-event packet (RFC 4733 §2.3) from `side`: the first one of each
/// event tells the digit sink. The packet is still relayed, so a bridged phone gets
/// it too.
fn telephone_event(
    last: &mut Option<u32>,
    shared: &Shared,
    side: usize,
    timestamp: u32,
    payload: &[u8],
) {
    if payload.len() < 4 || *last == Some(timestamp) {
        return;
    }
    *last = Some(timestamp);
    let digit = match payload[0] {
        e @ 0..=9 => char::from(b'0' + e),
        10 => '*',
        11 => '#',
        e @ 12..=15 => char::from(b'A' + e - 12),
        _ => return, // tones and line events are not digits
    };
    // Cloned out so the sink runs without the relay's lock held.
    let sink = lock(&shared.digit_sink).clone();
    if let Some(sink) = sink {
        sink(
            if side == 0 {
                super::Side::A
            } else {
                super::Side::B
            },
            digit,
        );
    }
}
