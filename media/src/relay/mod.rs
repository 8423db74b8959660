//! The RTP/RTCP relay: every call's media goes phone A ⇄ relay ⇄ phone B.
//!
//! Anchoring media is what makes calls work across NATs (each phone talks to a
//! public address that answers from the port it was sent to), hides the phones'
//! addresses from each other, and gives one place to measure call quality. The
//! relay copies datagrams; it does not decode, transcode or re-sequence them, so
//! SRTP and any codec pass through.
//!
//! # Shape
//! [`Relay`] is the port pool. [`Relay::allocate`] takes two port pairs (one per
//! [`Side`]: bound afresh, or taken over from a finished session that parked
//! them, see `pool`) and spawns one task that relays between them; the
//! [`Session`] handle is the call agent's control surface: tell it where each
//! phone wants media ([`Session::set_remote`], from its SDP), read what happened
//! ([`Session::stats`], [`Session::counters`], [`Session::idle_for`]), and drop it
//! to hang up.
//!
//! ```text
//!  phone A ──► A.rtp  ┐            ┌ B.rtp  ──► phone B
//!  phone A ◄── A.rtp  │  session   │ B.rtp  ◄── phone B
//!  phone A ◄─► A.rtcp ┘   task     └ B.rtcp ◄─► phone B
//! ```
//!
//! A packet that phone A sends to A's RTP socket leaves through B's RTP socket, so
//! phone B sees it come from the address in the SDP it was given (symmetric RTP,
//! RFC 4961); likewise B → A and for RTCP. With rtcp-mux (RFC 5761) a side's RTCP
//! rides its RTP socket; the relay converts between muxed and separate RTCP when
//! the two phones disagree.
//!
//! Sessions run on the relay's own threads (`[rtp] threads`), each a
//! single-threaded runtime, never on the caller's: a packet is received, counted and
//! forwarded by one thread, with no lock and no allocation (see `worker`).

mod dtmf;
mod latch;
mod player;
mod pool;
mod shared;
mod threads;
mod worker;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

pub use dtmf::event_code;
pub use latch::RELATCH_AFTER;
pub use shared::Counters;

use crate::record::{RecordError, RecordSpec, Recording};
use crate::stats::StreamStats;
use pool::{PortLease, PortPool};
use shared::{Remote, Shared, lock};
use worker::Worker;

/// Why a session could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("no free RTP ports in {0}")]
    Exhausted(String),
    #[error("cannot bind an RTP socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Something that sees a session's RTP as it passes: a recording, a conference
/// seat. Called on the media thread for every RTP packet with a header, so it must
/// not block. Returns true when it consumed the packet (it is not relayed on).
pub(crate) trait Tap: Send + Sync {
    fn push(
        &self,
        side: usize,
        header: &crate::rtp::RtpHeader,
        packet: &[u8],
        now: Instant,
    ) -> bool;
}

/// Told of each DTMF digit (RFC 4733 telephone-event) a phone sends, and from which
/// side. Called on the media thread: it must not block.
pub type DigitSink = Arc<dyn Fn(Side, char) + Send + Sync>;

/// The two call legs a session joins. A is conventionally the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    /// The side media from this one is relayed to.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// The relay's port pool; cheap to clone, and every clone shares the pool.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<RelayInner>,
}

struct RelayInner {
    bind: IpAddr,
    advertised: IpAddr,
    label: String,
    pool: Arc<pool::Pool>,
    threads: threads::MediaThreads,
    rooms: Arc<crate::conference::Registry>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("address", &self.inner.bind)
            .field("advertised", &self.inner.advertised)
            .field("ports", &self.inner.label)
            .field("in_use", &self.ports_in_use())
            .finish()
    }
}

impl Relay {
    /// One media thread; binds nothing yet. Ports are taken from `ports` (even RTP
    /// port, RTP+1 for RTCP).
    pub fn new(address: IpAddr, ports: RangeInclusive<u16>) -> Relay {
        Relay::with_advertised(address, address, ports)
    }

    /// A relay that binds `bind` but puts `advertised` in SDP: for a host behind a
    /// 1:1 NAT (a cloud VM with a public address the host never sees), or one that
    /// binds the wildcard address.
    pub fn with_advertised(bind: IpAddr, advertised: IpAddr, ports: RangeInclusive<u16>) -> Relay {
        Relay::with_threads(bind, advertised, ports, 1).expect("start a media thread")
    }

    /// A relay whose sessions are spread over `threads` media threads of its own.
    pub fn with_threads(
        bind: IpAddr,
        advertised: IpAddr,
        ports: RangeInclusive<u16>,
        threads: usize,
    ) -> Result<Relay, RelayError> {
        let pool = Arc::new(Mutex::new(
            PortPool::new(&ports).with_open_limit(pool::open_pairs_budget()),
        ));
        let threads = threads::MediaThreads::spawn(threads)?;
        threads
            .first()
            .spawn(close_parked_pairs(Arc::downgrade(&pool)));
        Ok(Relay {
            inner: Arc::new(RelayInner {
                bind,
                advertised,
                label: format!("{}-{}", ports.start(), ports.end()),
                pool,
                threads,
                rooms: Default::default(),
            }),
        })
    }

    /// How many media threads carry the sessions.
    pub fn threads(&self) -> usize {
        self.inner.threads.len()
    }

    /// Allocates a session: for each of the two sides an RTP socket on an even port and
    /// an RTCP socket on port+1 (skip pairs that fail to bind, e.g. in use; error when
    /// the range is exhausted), and starts its task on the next media thread. A pair
    /// whose sockets a finished session left parked is taken over as it is.
    pub fn allocate(&self) -> Result<Session, RelayError> {
        let inner = &self.inner;
        let (thread, runtime) = inner.threads.pick();
        // The lease returns whatever it holds if we bail out below.
        let mut lease = PortLease::new(Arc::clone(&inner.pool), thread);
        let [(a_port, a), (b_port, b)] = self.claim_pairs(&mut lease)?;
        let (a, b) = {
            // Registered with the media thread's poller, where the task will run.
            let _on_media_thread = runtime.enter();
            (a.register(thread)?, b.register(thread)?)
        };
        let sockets = [a.0, a.1, b.0, b.1].map(Arc::new);
        lease.attach(&sockets);
        let locals =
            [a_port, a_port + 1, b_port, b_port + 1].map(|p| SocketAddr::new(inner.bind, p));
        // The player sends from the same RTP sockets the phones already talk to.
        let speakers = [Arc::clone(&sockets[0]), Arc::clone(&sockets[2])];
        let shared = Arc::new(Shared::new(Instant::now()));
        let worker = Worker::new(sockets, locals, Arc::clone(&shared), lease);
        let locals = locals.map(|a| SocketAddr::new(inner.advertised, a.port()));
        let task = runtime.spawn(worker.run());
        tracing::debug!(a = %locals[0], b = %locals[2], "media session allocated");
        Ok(Session {
            shared,
            locals,
            task,
            media_thread: runtime.clone(),
            speakers,
            player: Mutex::new(None),
            rooms: Arc::clone(&inner.rooms),
        })
    }

    /// Takes two pairs for one session, in the pool's round-robin order, into
    /// `lease`: parked ones as they are, free ones bound now.
    fn claim_pairs(&self, lease: &mut PortLease) -> Result<[(u16, Pair); 2], RelayError> {
        let inner = &self.inner;
        let mut found = Vec::with_capacity(2);
        let mut pool = pool::lock(&inner.pool);
        // Closed once the lock is let go.
        let expired = pool.expire(Instant::now());
        // Walk lazily: collecting every free pair would cost the whole range
        // (thousands of entries) on every call.
        let start = pool.cursor();
        let mut k = 0;
        while found.len() < 2 {
            let Some((at, index)) = pool.free_from(start, k) else {
                break;
            };
            k = at + 1;
            let port = pool.port(index);
            if let Some((sockets, on)) = pool.take(index) {
                lease.push(index);
                found.push((port, Pair::Parked(sockets, on)));
                continue;
            }
            let mut bound = pool::bind_pair(inner.bind, port);
            if matches!(&bound, Err(e) if pool::out_of_descriptors(e)) {
                // Parked sockets hold descriptors that a call needs now.
                drop(pool.evict(pool::EVICT_ON_EMFILE));
                bound = pool::bind_pair(inner.bind, port);
            }
            match bound {
                Ok((rtp, rtcp)) => {
                    lease.push(index);
                    found.push((port, Pair::Bound(rtp, rtcp)));
                }
                Err(e) => {
                    pool.release(index);
                    if !pool::skippable(&e) {
                        return Err(e.into());
                    }
                    tracing::debug!(port, error = %e, "RTP port pair unavailable, skipping");
                }
            }
        }
        drop(pool);
        drop(expired);
        <[_; 2]>::try_from(found).map_err(|_| RelayError::Exhausted(inner.label.clone()))
    }

    /// Number of port pairs currently allocated (two per live session). A dropped
    /// session's pairs return once its task has been torn down, at the runtime's
    /// next turn.
    pub fn ports_in_use(&self) -> usize {
        self.collected().in_use()
    }

    /// (name, members) of every conference room in use.
    pub fn conferences(&self) -> Vec<(String, usize)> {
        self.inner.rooms.list()
    }

    /// Number of free port pairs whose sockets a finished session left open for
    /// the next one (see `pool`).
    pub fn ports_parked(&self) -> usize {
        self.collected().parked()
    }

    /// The pool, with the pairs that finished sessions' last holders have let go
    /// of since parked (a count read right after a session's end sees them).
    fn collected(&self) -> std::sync::MutexGuard<'_, PortPool<tokio::net::UdpSocket>> {
        let mut pool = pool::lock(&self.inner.pool);
        let closing = pool.collect(Instant::now());
        drop(closing);
        pool
    }

    /// Number of port pairs in the range; half of it is the number of sessions.
    pub fn capacity(&self) -> usize {
        pool::lock(&self.inner.pool).capacity()
    }
}

/// What allocation found for one pair of a new session.
enum Pair {
    /// Sockets a finished session parked, registered with that media thread.
    Parked([tokio::net::UdpSocket; 2], usize),
    /// Sockets bound just now.
    Bound(std::net::UdpSocket, std::net::UdpSocket),
}

impl Pair {
    /// The pair's RTP and RTCP sockets, registered with media thread `thread`'s
    /// poller (the caller is in its runtime) and with nothing waiting to be read
    /// from an earlier call.
    fn register(
        self,
        thread: usize,
    ) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::UdpSocket)> {
        use tokio::net::UdpSocket;
        match self {
            Pair::Parked([rtp, rtcp], on) => {
                let (rtp, rtcp) = if on == thread {
                    (rtp, rtcp)
                } else {
                    // Parked by a session of another media thread.
                    (
                        UdpSocket::from_std(rtp.into_std()?)?,
                        UdpSocket::from_std(rtcp.into_std()?)?,
                    )
                };
                pool::drain(&rtp);
                pool::drain(&rtcp);
                Ok((rtp, rtcp))
            }
            Pair::Bound(rtp, rtcp) => Ok((UdpSocket::from_std(rtp)?, UdpSocket::from_std(rtcp)?)),
        }
    }
}

/// Closes parked pairs nobody reused in time, also when no call comes to do it.
async fn close_parked_pairs(pool: std::sync::Weak<pool::Pool>) {
    let mut tick = tokio::time::interval(pool::KEEP_PARKED / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let expired = pool::lock(&pool).expire(Instant::now());
        drop(pool);
        drop(expired);
    }
}

/// One call's media anchor. Dropping it stops its task and returns its ports.
pub struct Session {
    shared: Arc<Shared>,
    /// Advertised addresses of A.rtp, A.rtcp, B.rtp, B.rtcp.
    locals: [SocketAddr; 4],
    task: JoinHandle<()>,
    media_thread: tokio::runtime::Handle,
    /// Each side's RTP socket, shared with the relay task, for [`Session::play`].
    speakers: [Arc<tokio::net::UdpSocket>; 2],
    player: Mutex<Option<JoinHandle<()>>>,
    /// The relay's conference rooms, for [`Session::join`].
    rooms: Arc<crate::conference::Registry>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("a", &self.locals[0])
            .field("b", &self.locals[2])
            .field("latched", &*lock(&self.shared.latched))
            .finish()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        self.stop_playing();
    }
}

impl Session {
    /// What goes in the SDP sent to that side's phone.
    pub fn local_rtp(&self, side: Side) -> SocketAddr {
        self.locals[side.index() * 2]
    }

    /// The RTCP socket of that side (always `local_rtp` port + 1).
    pub fn local_rtcp(&self, side: Side) -> SocketAddr {
        self.locals[side.index() * 2 + 1]
    }

    /// The address the phone on `side` announced in its SDP. Until that side's first
    /// packet arrives, media for it is sent there; afterwards the source address of the
    /// packets it sends wins (symmetric RTP / latching, so phones behind NAT work).
    /// RTCP goes to `rtcp` (or rtp port+1 when None; when rtcp_mux, RTCP rides the RTP socket).
    ///
    /// Announcing a different address than before forgets the latched source, so
    /// the phone's next packet latches at once; re-announcing the same address (a
    /// session refresh) keeps it.
    pub fn set_remote(
        &self,
        side: Side,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
        rtcp_mux: bool,
    ) {
        let rtcp = if rtcp_mux {
            rtp
        } else {
            rtcp.unwrap_or_else(|| SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)))
        };
        let mut remotes = lock(&self.shared.remotes);
        remotes[side.index()] = Some(Remote {
            rtp,
            rtcp,
            mux: rtcp_mux,
        });
        self.shared.remote_generation.fetch_add(1, Release);
    }

    /// Reports the digits `side`'s phone sends as telephone-event with RTP payload
    /// type `payload_type` (from its SDP) to `sink`.
    pub fn listen_for_digits(&self, side: Side, payload_type: u8, sink: DigitSink) {
        *lock(&self.shared.digit_sink) = Some(sink);
        self.shared.dtmf_pt[side.index()].store(payload_type, Relaxed);
    }

    /// Plays G.711 `payload` (payload type 0 or 8) to `side`'s phone, 20 ms per
    /// packet, replacing anything still playing. It takes `payload.len() / 8` ms,
    /// or runs until [`Session::stop_playing`] when `looped` (a tone's cadence).
    pub fn play(&self, side: Side, payload: Arc<[u8]>, payload_type: u8, looped: bool) {
        let task = self.media_thread.spawn(player::play(
            Arc::clone(&self.speakers[side.index()]),
            Arc::clone(&self.shared),
            side.index(),
            payload,
            payload_type,
            looped,
        ));
        if let Some(old) = lock(&self.player).replace(task) {
            old.abort();
        }
    }

    /// Sends `digits` to `side`'s phone as RFC 4733 telephone-events with payload
    /// type `payload_type`: each key held `duration`, then `gap` of nothing. Replaces
    /// a prompt in progress ([`Session::stop_playing`] stops it too).
    pub fn send_digits(
        &self,
        side: Side,
        digits: &str,
        payload_type: u8,
        duration: Duration,
        gap: Duration,
    ) {
        let task = self.media_thread.spawn(dtmf::send(
            Arc::clone(&self.speakers[side.index()]),
            Arc::clone(&self.shared),
            side.index(),
            digits.to_string(),
            payload_type,
            duration,
            gap,
        ));
        if let Some(old) = lock(&self.player).replace(task) {
            old.abort();
        }
    }

    /// Stops a prompt started by [`Session::play`].
    pub fn stop_playing(&self) {
        if let Some(task) = lock(&self.player).take() {
            task.abort();
        }
    }

    /// Starts recording the sides `spec` names into its file (see [`crate::record`]);
    /// it runs until the returned handle is finished or dropped, or the session ends.
    pub fn record(&self, spec: &RecordSpec) -> Result<Recording, RecordError> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Relaxed);
        let shared = Arc::clone(&self.shared);
        let detach = Box::new(move |id: u64| {
            lock(&shared.taps).retain(|(i, _)| *i != id);
            shared.tap_generation.fetch_add(1, Release);
        });
        let (recording, tap) = Recording::start(spec, id, detach)?;
        self.add_tap(id, Arc::new(tap));
        Ok(recording)
    }

    /// Seats the caller side (A) in conference room `room` (created on this
    /// session's media thread when empty): its audio feeds the room, and it hears
    /// everyone else in `payload_type` (0 PCMU, 8 PCMA). Dropping the seat leaves.
    pub fn join(&self, room: &str, payload_type: u8) -> crate::conference::Seat {
        let room = self.rooms.room(room, &self.media_thread);
        let shared = Arc::clone(&self.shared);
        let member = Arc::new(crate::conference::Member::new(
            Arc::clone(&self.speakers[0]),
            Box::new(move || player::destination(&shared, 0)),
            payload_type,
        ));
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Relaxed) | (1 << 63);
        self.add_tap(id, Arc::clone(&member) as Arc<dyn Tap>);
        room.add(Arc::clone(&member));
        let shared = Arc::clone(&self.shared);
        crate::conference::Seat {
            room,
            member,
            leave: Some(Box::new(move || {
                lock(&shared.taps).retain(|(i, _)| *i != id);
                shared.tap_generation.fetch_add(1, Release);
            })),
        }
    }

    fn add_tap(&self, id: u64, tap: Arc<dyn Tap>) {
        lock(&self.shared.taps).push((id, tap));
        self.shared.tap_generation.fetch_add(1, Release);
    }

    /// Echo (the dialplan's `Echo()`): RTP from `side`'s phone goes back to it, with
    /// another SSRC, instead of to the other side; its RTCP is dropped.
    pub fn set_echo(&self, side: Side, on: bool) {
        self.shared.echo[side.index()].store(on, Relaxed);
    }

    /// The RTP clock rate of what `side` sends, for jitter in milliseconds (default
    /// 8000: PCMU, PCMA, G.722; 48000 for opus).
    pub fn set_clock_rate(&self, side: Side, clock_rate: u32) {
        self.shared.sides[side.index()]
            .clock_rate
            .store(clock_rate, Relaxed);
    }

    /// Stats of what the phone on `side` sent to the relay (and was forwarded to the other side).
    pub fn stats(&self, side: Side) -> StreamStats {
        self.shared.sides[side.index()].stats.load()
    }

    /// Round trip between the relay and `side`'s phone, from its RTCP receiver
    /// reports; None until it has answered a relayed sender report.
    pub fn rtt(&self, side: Side) -> Option<Duration> {
        match self.shared.sides[side.index()].rtt_us.load(Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(u64::from(us))),
        }
    }

    /// The payload type `side`'s phone last sent audio in (0 before any).
    pub fn payload_type(&self, side: Side) -> u8 {
        self.shared.sides[side.index()].payload_type.load(Relaxed)
    }

    /// Packets (RTP and RTCP) relayed from `side` to the other.
    pub fn forwarded(&self, side: Side) -> u64 {
        let c = self.counters(side);
        c.rtp_forwarded + c.rtcp_forwarded
    }

    /// Every packet counter of `side`.
    pub fn counters(&self, side: Side) -> Counters {
        self.shared.sides[side.index()].counters.load()
    }

    /// Time since the last RTP packet from either side (or since allocation).
    pub fn idle_for(&self) -> Duration {
        self.shared.idle_for(Instant::now())
    }

    /// [`Session::idle_for`] as of `now`, for callers that keep their own clock.
    pub fn idle_at(&self, now: Instant) -> Duration {
        self.shared.idle_for(now)
    }

    /// Where media from `side`'s phone is currently latched (None until its first packet).
    pub fn latched(&self, side: Side) -> Option<SocketAddr> {
        lock(&self.shared.latched)[side.index()]
    }
}
