//! Plays a prompt toward one side of a session: a task on the session's media
//! thread that sends one 20 ms RTP packet per tick from that side's socket, so the
//! phone hears it from the address in its SDP. Media from the other side (there is
//! none while the dialplan plays to a caller) is not mixed in.

use std::hash::{BuildHasher as _, Hasher as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::shared::{Shared, lock};

/// Samples (bytes of G.711) per packet: 20 ms at 8 kHz.
const FRAME: usize = 160;

/// A value no two sessions are likely to share, for SSRC, first sequence number
/// and timestamp (RFC 3550 §5.1 asks for random ones).
fn random_u32() -> u32 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

pub(crate) async fn play(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    side: usize,
    payload: Arc<[u8]>,
    payload_type: u8,
    looped: bool,
) {
    // G.711 silence; G.722 payloads come in whole frames and need no padding.
    let silence = if payload_type == 8 { 0xd5 } else { 0xff };
    let ssrc = random_u32();
    let mut seq = random_u32() as u16;
    let mut timestamp = random_u32();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut packet = [0u8; 12 + FRAME];
    let rounds = if looped { usize::MAX } else { 1 };
    let frames = (0..rounds).flat_map(|_| payload.chunks(FRAME));
    for (n, frame) in frames.enumerate() {
        tick.tick().await;
        let Some(dest) = destination(&shared, side) else {
            continue;
        };
        // The marker bit opens a talkspurt (RFC 3551 §4.1).
        packet[0] = 0x80;
        packet[1] = payload_type | if n == 0 { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
        packet[12..12 + frame.len()].copy_from_slice(frame);
        packet[12 + frame.len()..].fill(silence);
        let _ = socket.try_send_to(&packet, dest);
        seq = seq.wrapping_add(1);
        timestamp = timestamp.wrapping_add(FRAME as u32);
    }
}

/// Where the phone on `side` takes its media: where it sends from, else its SDP.
pub(crate) fn destination(shared: &Shared, side: usize) -> Option<SocketAddr> {
    lock(&shared.latched)[side].or_else(|| lock(&shared.remotes)[side].map(|r| r.rtp))
}
