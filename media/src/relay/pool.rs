//! The port range, as pairs of an even RTP port and the RTCP port above it
//! (RFC 3550 §11: RTP on an even port, RTCP on the next odd one, which is what a
//! phone that ignores a=rtcp assumes).
//!
//! Allocation walks the range round-robin from where the last one stopped instead
//! of taking the lowest free pair: a port freed by a call that just ended may still
//! receive that call's stragglers, and those should not land in the next call.
//!
//! A finished session's sockets are not closed at once: they are parked, still
//! bound and registered with their media thread's poller, and the next session the
//! walk gives that pair takes them over. Opening, tuning, binding, registering,
//! deregistering and closing four sockets is about forty system calls per call,
//! more than all of its SIP messages; under load the walk comes back round to a
//! pair within seconds, so parking turns those calls into none. A pair parked for
//! [`KEEP_PARKED`] without being reused is closed, so a quiet switch holds open only
//! the ports of its calls in progress.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Kernel socket buffers we ask for. A burst (a paused VM, a GC pause upstream)
/// must not overflow the default ~200 KiB; the kernel caps this at
/// net.core.rmem_max/wmem_max anyway, so asking costs nothing on small systems.
const SOCKET_BUFFER: usize = 1 << 20;
/// DSCP EF (46), the class for voice (RFC 4594 §4.2), in the TOS byte.
const TOS_EF: u32 = 46 << 2;

/// How long a finished session's sockets stay open waiting for the next session
/// to take their pair. Under load the round-robin walk returns to a pair well
/// within this; at a few calls a minute it does not, and the pair is closed.
pub(crate) const KEEP_PARKED: Duration = Duration::from_secs(10);

/// Parked pairs closed at once when the process runs out of file descriptors.
pub(crate) const EVICT_ON_EMFILE: usize = 64;

/// Datagrams read off a parked socket before it is reused; stragglers of the
/// previous call would otherwise be the new call's first packets (and latch).
const DRAIN_LIMIT: usize = 256;

/// One pair of the range.
#[derive(Debug)]
enum Slot<S> {
    Free,
    Taken,
    /// A finished session's RTP and RTCP sockets, still open, registered with
    /// media thread `thread`'s poller since `since`.
    Parked {
        sockets: [S; 2],
        thread: usize,
        since: Instant,
    },
}

/// Which pairs of the range are taken, and the parked sockets of the others.
/// Plain data over the socket type `S` (tests use a stand-in); the caller holds it
/// in a Mutex that only allocation, release and expiry touch.
#[derive(Debug)]
pub(crate) struct PortPool<S> {
    first: u16,
    slots: Vec<Slot<S>>,
    count: usize,
    next: usize,
    /// Parked pairs, oldest first, with when they were parked: an entry whose
    /// slot was reused (or re-parked) since no longer matches and is skipped.
    parked: VecDeque<(usize, Instant)>,
    /// Pairs parked now.
    parked_count: usize,
    /// Pairs of finished sessions with a socket still held elsewhere (a prompt
    /// or a conference seat winding down on its media thread): still taken, and
    /// parked by [`PortPool::collect`] once the pool holds their sockets alone.
    returning: Vec<(usize, [Arc<S>; 2], usize)>,
    /// The most pairs that may be open, taken or parked, before a finished
    /// session's sockets are closed instead of parked (see [`open_pairs_budget`]).
    max_open: usize,
}

impl<S> PortPool<S> {
    pub(crate) fn new(ports: &RangeInclusive<u16>) -> PortPool<S> {
        let start = u32::from(*ports.start());
        let end = u32::from(*ports.end());
        let first = start + (start & 1);
        let pairs = if end > first {
            ((end - first - 1) / 2 + 1) as usize
        } else {
            0
        };
        PortPool {
            first: first.min(u32::from(u16::MAX)) as u16,
            slots: (0..pairs).map(|_| Slot::Free).collect(),
            count: 0,
            next: 0,
            parked: VecDeque::new(),
            parked_count: 0,
            max_open: usize::MAX,
            returning: Vec::new(),
        }
    }

    /// Parks a finished session's pairs only while fewer than `pairs` pairs are
    /// open (taken or parked); beyond that its sockets are closed.
    pub(crate) fn with_open_limit(mut self, pairs: usize) -> PortPool<S> {
        self.max_open = pairs;
        self
    }

    /// Number of pairs in the range.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of pairs taken by sessions (parked ones are free).
    pub(crate) fn in_use(&self) -> usize {
        self.count
    }

    /// Number of pairs whose sockets are parked.
    pub(crate) fn parked(&self) -> usize {
        self.parked_count
    }

    /// The RTP port of pair `index`.
    pub(crate) fn port(&self, index: usize) -> u16 {
        self.first + 2 * index as u16
    }

    /// The first free pair at or after the `k`-th position from `start` in
    /// round-robin order, with its position; stops after one lap.
    pub(crate) fn free_from(&self, start: usize, k: usize) -> Option<(usize, usize)> {
        let n = self.slots.len();
        (k..n)
            .map(|k| (k, (start + k) % n))
            .find(|&(_, i)| !matches!(self.slots[i], Slot::Taken))
    }

    /// Where the round-robin walk starts.
    pub(crate) fn cursor(&self) -> usize {
        self.next
    }

    /// Marks pair `index` taken; hands over its parked sockets, with the media
    /// thread they are registered on, if it has any.
    pub(crate) fn take(&mut self, index: usize) -> Option<([S; 2], usize)> {
        let old = std::mem::replace(&mut self.slots[index], Slot::Taken);
        debug_assert!(!matches!(old, Slot::Taken));
        self.count += 1;
        self.next = (index + 1) % self.slots.len();
        match old {
            Slot::Parked {
                sockets, thread, ..
            } => {
                self.parked_count -= 1;
                Some((sockets, thread))
            }
            _ => None,
        }
    }

    /// Frees a taken pair whose sockets are closed (or closing).
    pub(crate) fn release(&mut self, index: usize) {
        if matches!(self.slots[index], Slot::Taken) {
            self.slots[index] = Slot::Free;
            self.count -= 1;
        }
    }

    /// Frees a taken pair and keeps its sockets open for the next session, unless
    /// the parking limit is reached: then the sockets come back, for the caller to
    /// close once it has let go of the lock.
    #[must_use]
    pub(crate) fn park(
        &mut self,
        index: usize,
        sockets: [S; 2],
        thread: usize,
        now: Instant,
    ) -> Option<[S; 2]> {
        if !matches!(self.slots[index], Slot::Taken) {
            return Some(sockets);
        }
        self.count -= 1;
        if self.count + self.parked_count >= self.max_open {
            self.slots[index] = Slot::Free;
            return Some(sockets);
        }
        self.slots[index] = Slot::Parked {
            sockets,
            thread,
            since: now,
        };
        self.parked_count += 1;
        self.parked.push_back((index, now));
        None
    }

    /// A finished session's pair, with its sockets: parked at once if nothing
    /// else holds them, else when [`PortPool::collect`] finds them let go. Sockets
    /// to close come back, as from [`PortPool::park`].
    #[must_use]
    pub(crate) fn give_back(
        &mut self,
        index: usize,
        sockets: [Arc<S>; 2],
        thread: usize,
        now: Instant,
    ) -> Option<[S; 2]> {
        match unwrap_pair(sockets) {
            Ok(sockets) => self.park(index, sockets, thread, now),
            Err(sockets) => {
                self.returning.push((index, sockets, thread));
                None
            }
        }
    }

    /// Parks the returning pairs that nobody else holds any more; sockets to
    /// close come back.
    #[must_use]
    pub(crate) fn collect(&mut self, now: Instant) -> Vec<[S; 2]> {
        let mut closed = Vec::new();
        for (index, sockets, thread) in std::mem::take(&mut self.returning) {
            match unwrap_pair(sockets) {
                Ok(sockets) => closed.extend(self.park(index, sockets, thread, now)),
                Err(sockets) => self.returning.push((index, sockets, thread)),
            }
        }
        closed
    }

    /// Parks what [`PortPool::collect`] can, then unparks the pairs parked for
    /// [`KEEP_PARKED`] or longer; the caller closes the sockets returned, after
    /// letting go of the lock.
    #[must_use]
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<[S; 2]> {
        let mut closed = self.collect(now);
        while let Some(&(index, at)) = self.parked.front() {
            if now.saturating_duration_since(at) < KEEP_PARKED {
                break;
            }
            self.parked.pop_front();
            closed.extend(self.unpark(index, at));
        }
        closed
    }

    /// Unparks up to `n` of the oldest parked pairs, to give their file
    /// descriptors back.
    #[must_use]
    pub(crate) fn evict(&mut self, n: usize) -> Vec<[S; 2]> {
        let mut closed = Vec::new();
        while closed.len() < n {
            let Some((index, at)) = self.parked.pop_front() else {
                break;
            };
            closed.extend(self.unpark(index, at));
        }
        closed
    }

    fn unpark(&mut self, index: usize, parked_at: Instant) -> Option<[S; 2]> {
        match &self.slots[index] {
            Slot::Parked { since, .. } if *since == parked_at => {
                self.parked_count -= 1;
                match std::mem::replace(&mut self.slots[index], Slot::Free) {
                    Slot::Parked { sockets, .. } => Some(sockets),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Both sockets of a pair, if nothing but these handles holds them.
fn unwrap_pair<S>(sockets: [Arc<S>; 2]) -> Result<[S; 2], [Arc<S>; 2]> {
    if sockets.iter().any(|s| Arc::strong_count(s) > 1) {
        return Err(sockets);
    }
    let [rtp, rtcp] = sockets;
    match (Arc::try_unwrap(rtp), Arc::try_unwrap(rtcp)) {
        (Ok(rtp), Ok(rtcp)) => Ok([rtp, rtcp]),
        // Sole handles cannot be cloned by anyone else in between.
        _ => unreachable!("a sole handle unwraps"),
    }
}

/// Locks the pool even if a panicking thread poisoned it: every operation leaves
/// the pool consistent.
pub(crate) fn lock<S>(pool: &Mutex<PortPool<S>>) -> MutexGuard<'_, PortPool<S>> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// The relay's pool: sockets are parked registered with a media thread.
pub(crate) type Pool = Mutex<PortPool<tokio::net::UdpSocket>>;

/// Pairs held by one session, and once it runs, its sockets. Dropping it (with
/// the relay task that owns it) gives the pairs back: parked once nobody else
/// holds their sockets, so a pair is never handed out while a socket of it is in
/// use elsewhere. A lease dropped before its sockets were attached frees its
/// pairs.
#[derive(Debug)]
pub(crate) struct PortLease {
    pool: Arc<Pool>,
    /// The media thread the sockets are registered on.
    thread: usize,
    pairs: Vec<usize>,
    /// RTP and RTCP of each pair, in the order of `pairs`, once attached.
    sockets: Vec<Arc<tokio::net::UdpSocket>>,
}

impl PortLease {
    pub(crate) fn new(pool: Arc<Pool>, thread: usize) -> PortLease {
        PortLease {
            pool,
            thread,
            pairs: Vec::with_capacity(2),
            sockets: Vec::new(),
        }
    }

    /// Records a pair already marked taken in the pool.
    pub(crate) fn push(&mut self, index: usize) {
        self.pairs.push(index);
    }

    /// The sockets of the pairs, RTP then RTCP of each, for parking on drop.
    pub(crate) fn attach(&mut self, sockets: &[Arc<tokio::net::UdpSocket>]) {
        self.sockets = sockets.to_vec();
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut sockets = std::mem::take(&mut self.sockets).into_iter();
        let mut closing = Vec::new();
        let mut pool = lock(&self.pool);
        for &index in &self.pairs {
            match (sockets.next(), sockets.next()) {
                (Some(rtp), Some(rtcp)) => {
                    closing.extend(pool.give_back(index, [rtp, rtcp], self.thread, now))
                }
                _ => pool.release(index),
            }
        }
        drop(pool);
        drop(closing);
    }
}

/// File descriptors left for everything but parked relay sockets: SIP over TCP,
/// the database, the admin API, and the sockets of calls in progress.
const DESCRIPTORS_KEPT_FREE: u64 = 1024;

/// How many pairs may be open before parking stops: what the open files limit
/// leaves once [`DESCRIPTORS_KEPT_FREE`] are set aside, two sockets a pair. Calls
/// in progress may go past it (parked pairs are closed when a bind runs out of
/// descriptors); parked ones never do.
pub(crate) fn open_pairs_budget() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return usize::MAX;
    }
    let spare = limit.rlim_cur.saturating_sub(DESCRIPTORS_KEPT_FREE);
    usize::try_from(spare / 2).unwrap_or(usize::MAX)
}

/// Whether a bind failure means "this pair is not available, try the next" rather
/// than "this relay cannot bind at all".
pub(crate) fn skippable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

/// Whether a failure is the process (or system) being out of file descriptors,
/// which closing parked sockets cures.
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Reads and discards whatever a parked socket received since its last session.
pub(crate) fn drain(socket: &tokio::net::UdpSocket) {
    let socket = SockRef::from(socket);
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    for _ in 0..DRAIN_LIMIT {
        if socket.recv(&mut buf).is_err() {
            break;
        }
    }
}

/// Binds a non-blocking UDP socket for media.
pub(crate) fn bind(ip: IpAddr, port: u16) -> io::Result<std::net::UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Tuning is best effort: a relay that cannot set DSCP or big buffers still relays.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    match ip {
        IpAddr::V4(_) => {
            let _ = socket.set_tos_v4(TOS_EF);
        }
        IpAddr::V6(_) => {
            #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
            let _ = socket.set_tclass_v6(TOS_EF);
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds the RTP socket on `port` and the RTCP socket on `port + 1`.
pub(crate) fn bind_pair(
    ip: IpAddr,
    port: u16,
) -> io::Result<(std::net::UdpSocket, std::net::UdpSocket)> {
    let rtp = bind(ip, port)?;
    let rtcp = bind(ip, port + 1)?;
    Ok((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-in for a socket: its number.
    type Pool = PortPool<u32>;

    #[test]
    fn pairs_start_even_and_fit_the_range() {
        let p = Pool::new(&(30001..=30010));
        assert_eq!(p.capacity(), 4); // 30002/3 .. 30008/9; 30010 has no partner
        assert_eq!(p.port(0), 30002);
        assert_eq!(p.port(3), 30008);
        assert_eq!(Pool::new(&(30000..=30001)).capacity(), 1);
        assert_eq!(Pool::new(&(30000..=30000)).capacity(), 0);
        assert_eq!(Pool::new(&(30001..=30002)).capacity(), 0);
        assert_eq!(Pool::new(&RangeInclusive::new(30010, 30000)).capacity(), 0);
        let top = Pool::new(&(65534..=65535));
        assert_eq!((top.capacity(), top.port(0)), (1, 65534));
        assert_eq!(Pool::new(&(65535..=65535)).capacity(), 0);
    }

    /// Every free pair in the order allocation visits them.
    fn free(p: &Pool) -> Vec<usize> {
        let start = p.cursor();
        let mut out = Vec::new();
        let mut k = 0;
        while let Some((at, index)) = p.free_from(start, k) {
            out.push(index);
            k = at + 1;
        }
        out
    }

    #[test]
    fn round_robin_and_release() {
        let mut p = Pool::new(&(30000..=30007));
        assert_eq!(free(&p), [0, 1, 2, 3]);
        assert_eq!(p.take(0), None);
        assert_eq!(p.take(1), None);
        assert_eq!(p.in_use(), 2);
        assert_eq!(free(&p), [2, 3]);
        p.release(0);
        // The freed pair comes last.
        assert_eq!(free(&p), [2, 3, 0]);
        p.release(0);
        assert_eq!(p.in_use(), 1);
    }

    #[test]
    fn a_parked_pair_is_free_and_hands_its_sockets_to_the_next_session() {
        let t0 = Instant::now();
        let mut p = Pool::new(&(30000..=30007));
        let _ = p.take(0);
        let _ = p.take(1);
        assert_eq!(p.park(0, [10, 11], 1, t0), None);
        assert_eq!((p.in_use(), p.parked()), (1, 1));
        // Still visited last, like any pair just freed.
        assert_eq!(free(&p), [2, 3, 0]);
        let _ = p.take(2);
        let _ = p.take(3);
        assert_eq!(p.take(0), Some(([10, 11], 1)));
        assert_eq!((p.in_use(), p.parked()), (4, 0));
        p.release(0);
        assert_eq!((p.in_use(), p.parked()), (3, 0));
        // Parking a pair nobody holds hands the sockets back to be closed.
        assert_eq!(p.park(0, [12, 13], 0, t0), Some([12, 13]));
        assert_eq!((p.in_use(), p.parked()), (3, 0));
    }

    #[test]
    fn past_the_open_limit_a_finished_pair_is_closed_not_parked() {
        let t0 = Instant::now();
        let mut p = Pool::new(&(30000..=30007)).with_open_limit(2);
        for i in 0..3 {
            assert_eq!(p.take(i), None);
        }
        // Three taken: over the limit, so the first to finish closes.
        assert_eq!(p.park(0, [10, 11], 0, t0), Some([10, 11]));
        assert_eq!(p.park(1, [20, 21], 0, t0), None);
        assert_eq!((p.in_use(), p.parked()), (1, 1));
        assert_eq!(p.park(2, [30, 31], 0, t0), None);
        assert_eq!((p.in_use(), p.parked()), (0, 2));
        // Two open: a new session's pair is bound afresh, and on finishing closes.
        assert_eq!(p.take(3), None);
        assert_eq!(p.park(3, [40, 41], 0, t0), Some([40, 41]));
    }

    #[test]
    fn parked_pairs_close_after_a_while_unless_reused() {
        let t0 = Instant::now();
        let mut p = Pool::new(&(30000..=30007));
        for i in 0..3 {
            let _ = p.take(i);
        }
        assert_eq!(p.park(0, [10, 11], 0, t0), None);
        assert_eq!(p.park(1, [20, 21], 0, t0 + Duration::from_secs(2)), None);
        assert_eq!(p.park(2, [30, 31], 0, t0 + Duration::from_secs(4)), None);
        assert!(
            p.expire(t0 + KEEP_PARKED - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(p.expire(t0 + KEEP_PARKED), vec![[10, 11]]);
        // Pair 1 is reused and parked again: its first parking no longer counts.
        assert_eq!(p.take(1), Some(([20, 21], 0)));
        assert_eq!(p.park(1, [22, 23], 0, t0 + Duration::from_secs(9)), None);
        assert_eq!(p.expire(t0 + Duration::from_secs(14)), vec![[30, 31]]);
        assert_eq!(p.parked(), 1);
        assert_eq!(p.expire(t0 + Duration::from_secs(19)), vec![[22, 23]]);
        assert_eq!((p.parked(), p.in_use()), (0, 0));
        assert_eq!(free(&p).len(), 4);
    }

    #[test]
    fn a_pair_still_held_elsewhere_is_parked_once_let_go() {
        let t0 = Instant::now();
        let mut p = Pool::new(&(30000..=30007));
        let _ = p.take(0);
        let _ = p.take(1);
        assert_eq!(p.give_back(0, [Arc::new(10), Arc::new(11)], 0, t0), None);
        let speaker = Arc::new(20);
        assert_eq!(
            p.give_back(1, [Arc::clone(&speaker), Arc::new(21)], 0, t0),
            None
        );
        // Pair 1's RTP socket is still playing a prompt: it stays taken.
        assert_eq!((p.in_use(), p.parked()), (1, 1));
        assert!(p.collect(t0).is_empty());
        assert_eq!((p.in_use(), p.parked()), (1, 1));
        drop(speaker);
        assert!(p.collect(t0).is_empty());
        assert_eq!((p.in_use(), p.parked()), (0, 2));
        assert_eq!(p.take(1), Some(([20, 21], 0)));
    }

    #[test]
    fn eviction_closes_the_oldest_parked_pairs_first() {
        let t0 = Instant::now();
        let mut p = Pool::new(&(30000..=30007));
        for i in 0..4 {
            let _ = p.take(i);
            assert_eq!(
                p.park(i, [i as u32, 0], 0, t0 + Duration::from_millis(i as u64)),
                None
            );
        }
        assert_eq!(p.evict(2), vec![[0, 0], [1, 0]]);
        assert_eq!(p.parked(), 2);
        assert_eq!(p.evict(9).len(), 2);
        assert_eq!(p.parked(), 0);
    }
}
