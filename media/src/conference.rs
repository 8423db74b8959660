//! Conference rooms (the dialplan's `ConfBridge`): every member's G.711 is decoded
//! as it arrives, and every 20 ms a mixer sums the room and sends each member the
//! sum minus their own voice, encoded in their own law, from the port their phone
//! already talks to.
//!
//! A member is a relay session whose caller side feeds the room instead of a
//! second phone (see [`crate::relay::Session::join`]). The room's mixer runs on one
//! media thread; members on other threads hand it samples through a short lock
//! per packet. A room lives while it has members: the registry keeps only weak
//! references, and the mixer ends when the last seat is gone.
//!
//! Jitter: each member's samples wait in a small queue; mixing starts once 40 ms
//! are there, takes 20 ms per tick, and starts over after an underrun. Anything
//! above 200 ms is dropped from the front, so a phone that sends too fast cannot
//! build up delay.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hasher as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::g711;
use crate::prompt::Prompt;

/// Samples per tick: 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// Queued samples before a member is mixed in (40 ms).
const PREBUFFER: usize = 2 * FRAME;
/// Most samples a member's queue holds (200 ms).
const MAX_QUEUE: usize = 10 * FRAME;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_u32() -> u32 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

/// Where a member's phone takes its media (its latched source, else its SDP).
pub(crate) type Destination = Box<dyn Fn() -> Option<SocketAddr> + Send + Sync>;

/// One member, shared by its seat, the session's packet path and the mixer.
pub(crate) struct Member {
    queue: Mutex<Inbox>,
    muted: AtomicBool,
    speaker: Arc<UdpSocket>,
    destination: Destination,
    payload_type: u8,
    out: Mutex<Outbound>,
}

#[derive(Default)]
struct Inbox {
    samples: VecDeque<i16>,
    playing: bool,
}

struct Outbound {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    first: bool,
}

impl Member {
    pub(crate) fn new(
        speaker: Arc<UdpSocket>,
        destination: Destination,
        payload_type: u8,
    ) -> Member {
        Member {
            queue: Mutex::new(Inbox::default()),
            muted: AtomicBool::new(false),
            speaker,
            destination,
            payload_type,
            out: Mutex::new(Outbound {
                ssrc: random_u32(),
                seq: random_u32() as u16,
                timestamp: random_u32(),
                first: true,
            }),
        }
    }

    /// G.711 from the phone (payload type 0 or 8).
    pub(crate) fn hear(&self, payload_type: u8, payload: &[u8]) {
        let decode = if payload_type == 8 {
            g711::alaw_decode
        } else {
            g711::ulaw_decode
        };
        let mut q = lock(&self.queue);
        q.samples.extend(payload.iter().map(|&b| decode(b)));
        let excess = q.samples.len().saturating_sub(MAX_QUEUE);
        q.samples.drain(..excess);
    }

    /// This tick's 20 ms of the member's voice, or None while it (re)fills.
    fn take_frame(&self, frame: &mut [i16; FRAME]) -> bool {
        let mut q = lock(&self.queue);
        if !q.playing {
            if q.samples.len() < PREBUFFER {
                return false;
            }
            q.playing = true;
        }
        if q.samples.len() < FRAME {
            q.playing = false;
            return false;
        }
        for (slot, s) in frame.iter_mut().zip(q.samples.drain(..FRAME)) {
            *slot = s;
        }
        true
    }

    fn send(&self, mix: &[i16; FRAME], packet: &mut [u8; 12 + FRAME]) {
        let Some(dest) = (self.destination)() else {
            return;
        };
        let encode = if self.payload_type == 8 {
            g711::alaw_encode
        } else {
            g711::ulaw_encode
        };
        let mut out = lock(&self.out);
        packet[0] = 0x80;
        packet[1] = self.payload_type | if out.first { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&out.seq.to_be_bytes());
        packet[4..8].copy_from_slice(&out.timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
        for (b, &s) in packet[12..].iter_mut().zip(mix.iter()) {
            *b = encode(s);
        }
        out.first = false;
        out.seq = out.seq.wrapping_add(1);
        out.timestamp = out.timestamp.wrapping_add(FRAME as u32);
        drop(out);
        let _ = self.speaker.try_send_to(packet, dest);
    }
}

pub(crate) struct RoomInner {
    name: String,
    members: Mutex<Vec<Arc<Member>>>,
    /// A sound mixed into everyone's ear (join and leave tones), and how far it got.
    cue: Mutex<Option<(Arc<[i16]>, usize)>>,
    /// Mixer ticks so far, for tests and monitoring.
    ticks: AtomicU64,
}

/// A conference room. Cheap to clone; the room lives while a seat or a clone does.
#[derive(Clone)]
pub struct Room {
    inner: Arc<RoomInner>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("name", &self.inner.name)
            .field("members", &self.members())
            .finish()
    }
}

impl Room {
    /// A room whose mixer runs on `runtime` (a media thread).
    pub(crate) fn start(name: &str, runtime: &tokio::runtime::Handle) -> Room {
        let inner = Arc::new(RoomInner {
            name: name.to_string(),
            members: Mutex::new(Vec::new()),
            cue: Mutex::new(None),
            ticks: AtomicU64::new(0),
        });
        runtime.spawn(mixer(Arc::downgrade(&inner)));
        Room { inner }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn members(&self) -> usize {
        lock(&self.inner.members).len()
    }

    pub(crate) fn add(&self, member: Arc<Member>) {
        lock(&self.inner.members).push(member);
        self.cue(crate::tones::join_tone());
    }

    pub(crate) fn remove(&self, member: &Arc<Member>) {
        let mut members = lock(&self.inner.members);
        members.retain(|m| !Arc::ptr_eq(m, member));
        let left = members.len();
        drop(members);
        if left > 0 {
            self.cue(crate::tones::leave_tone());
        }
    }

    fn cue(&self, sound: Prompt) {
        *lock(&self.inner.cue) = Some((sound.samples().into(), 0));
    }

    /// One tick's mixing, for the mixer task and benchmarks: every member gets the
    /// room minus themselves.
    pub fn mix_once(&self, scratch: &mut Scratch) {
        mix(&self.inner, scratch);
    }
}

/// Buffers one mixer reuses from tick to tick, so mixing allocates nothing.
#[derive(Default)]
pub struct Scratch {
    members: Vec<Arc<Member>>,
    frames: Vec<([i16; FRAME], bool)>,
    packet: Vec<u8>,
}

async fn mixer(room: Weak<RoomInner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut scratch = Scratch::default();
    loop {
        tick.tick().await;
        let Some(room) = room.upgrade() else {
            return;
        };
        mix(&room, &mut scratch);
    }
}

fn mix(room: &RoomInner, scratch: &mut Scratch) {
    room.ticks.fetch_add(1, Relaxed);
    scratch.members.clear();
    scratch.members.extend(lock(&room.members).iter().cloned());
    scratch
        .frames
        .resize(scratch.members.len(), ([0; FRAME], false));
    let mut sum = [0i32; FRAME];
    for (member, (frame, live)) in scratch.members.iter().zip(scratch.frames.iter_mut()) {
        *live = member.take_frame(frame) && !member.muted.load(Relaxed);
        if *live {
            for (acc, &s) in sum.iter_mut().zip(frame.iter()) {
                *acc += i32::from(s);
            }
        }
    }
    {
        let mut cue = lock(&room.cue);
        if let Some((sound, at)) = cue.as_mut() {
            for (acc, &s) in sum.iter_mut().zip(sound[*at..].iter()) {
                *acc += i32::from(s);
            }
            *at += FRAME;
            if *at >= sound.len() {
                *cue = None;
            }
        }
    }
    scratch.packet.resize(12 + FRAME, 0);
    let packet: &mut [u8; 12 + FRAME] = (&mut scratch.packet[..]).try_into().expect("sized above");
    for (member, (frame, live)) in scratch.members.iter().zip(scratch.frames.iter()) {
        let mut out = [0i16; FRAME];
        for i in 0..FRAME {
            let own = if *live { i32::from(frame[i]) } else { 0 };
            out[i] = (sum[i] - own).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        member.send(&out, packet);
    }
}

/// The rooms of one relay, by name.
#[derive(Default)]
pub(crate) struct Registry {
    rooms: Mutex<HashMap<String, Weak<RoomInner>>>,
}

impl Registry {
    /// The room called `name`, started on `runtime` if nobody is in it.
    pub(crate) fn room(&self, name: &str, runtime: &tokio::runtime::Handle) -> Room {
        let mut rooms = lock(&self.rooms);
        rooms.retain(|_, r| r.strong_count() > 0);
        if let Some(inner) = rooms.get(name).and_then(Weak::upgrade) {
            return Room { inner };
        }
        let room = Room::start(name, runtime);
        rooms.insert(name.to_string(), Arc::downgrade(&room.inner));
        room
    }

    /// (name, members) of every room in use.
    pub(crate) fn list(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = lock(&self.rooms)
            .iter()
            .filter_map(|(n, r)| r.upgrade().map(|r| (n.clone(), lock(&r.members).len())))
            .collect();
        out.sort();
        out
    }
}

/// A member's place in a room; dropping it leaves the room.
pub struct Seat {
    pub(crate) room: Room,
    pub(crate) member: Arc<Member>,
    pub(crate) leave: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat")
            .field("room", &self.room.name())
            .finish()
    }
}

impl Seat {
    pub fn set_muted(&self, muted: bool) {
        self.member.muted.store(muted, Relaxed);
    }

    pub fn muted(&self) -> bool {
        self.member.muted.load(Relaxed)
    }

    pub fn room(&self) -> &Room {
        &self.room
    }
}

impl crate::relay::Tap for Member {
    /// The caller side's RTP feeds the room and goes nowhere else (the session
    /// has no second phone while it sits in a conference).
    fn push(
        &self,
        side: usize,
        header: &crate::rtp::RtpHeader,
        packet: &[u8],
        _now: std::time::Instant,
    ) -> bool {
        if side != 0 {
            return false;
        }
        if header.payload_type == 0 || header.payload_type == 8 {
            let end = header.payload_offset + header.payload_len;
            if let Some(payload) = packet.get(header.payload_offset..end) {
                self.hear(header.payload_type, payload);
            }
        }
        true
    }
}

/// A standalone room for benchmarks, mixed only when [`Room::mix_once`] is called
/// (its task runs on a runtime that is never driven).
#[doc(hidden)]
pub fn detached_room(name: &str) -> Room {
    Room {
        inner: Arc::new(RoomInner {
            name: name.to_string(),
            members: Mutex::new(Vec::new()),
            cue: Mutex::new(None),
            ticks: AtomicU64::new(0),
        }),
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(leave) = self.leave.take() {
            leave();
        }
        self.room.remove(&self.member);
    }
}

/// For tests and benchmarks: a member fed by hand whose mix goes to `to`.
#[doc(hidden)]
pub fn test_member(room: &Room, socket: Arc<UdpSocket>, to: SocketAddr) -> TestMember {
    let member = Arc::new(Member::new(socket, Box::new(move || Some(to)), 0));
    lock(&room.inner.members).push(Arc::clone(&member));
    TestMember(member)
}

/// See [`test_member`].
#[doc(hidden)]
pub struct TestMember(Arc<Member>);

impl TestMember {
    /// Hands the room 20 ms of µ-law as if the phone had sent it.
    pub fn speak(&self, ulaw: &[u8]) {
        self.0.hear(0, ulaw);
    }
}
