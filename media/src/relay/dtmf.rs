//! Sends DTMF to a phone as RFC 4733 telephone-events: per digit, one packet
//! every 20 ms sharing one timestamp with a growing duration (the first one
//! marked), then the end packet three times (§2.5.1.4), then a pause.
//! `w`/`W` in the digits wait half a second / a second.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::player::destination;
use super::shared::Shared;

/// Samples per 20 ms packet interval at the 8 kHz event clock.
const STEP: u16 = 160;
/// The volume field: -10 dBm0, what phones send.
const VOLUME: u8 = 10;

/// The RFC 4733 event code of a DTMF key.
pub fn event_code(key: char) -> Option<u8> {
    Some(match key.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        k @ 'A'..='D' => 12 + (k as u8 - b'A'),
        _ => return None,
    })
}

fn random_u32() -> u32 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

pub(crate) async fn send(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    side: usize,
    digits: String,
    payload_type: u8,
    duration: Duration,
    gap: Duration,
) {
    let ssrc = random_u32();
    let mut seq = random_u32() as u16;
    let mut timestamp = random_u32();
    let steps = (duration.as_millis() / 20).max(2) as u16;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for key in digits.chars() {
        // `w` and `W` pause half a second and a second, as in Asterisk's SendDTMF.
        let pause = match key {
            'w' => Some(Duration::from_millis(500)),
            'W' => Some(Duration::from_secs(1)),
            _ => None,
        };
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
            timestamp = timestamp.wrapping_add(pause.as_millis() as u32 * 8);
            continue;
        }
        let Some(code) = event_code(key) else {
            continue;
        };
        let mut packet = [0u8; 16];
        for n in 1..=steps + 2 {
            tick.tick().await;
            let end = n >= steps;
            let length = STEP.saturating_mul(n.min(steps));
            packet[0] = 0x80;
            packet[1] = payload_type | if n == 1 { 0x80 } else { 0 };
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
            packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
            packet[12] = code;
            packet[13] = VOLUME | if end { 0x80 } else { 0 };
            packet[14..16].copy_from_slice(&length.to_be_bytes());
            if let Some(dest) = destination(&shared, side) {
                let _ = socket.try_send_to(&packet, dest);
            }
            seq = seq.wrapping_add(1);
        }
        timestamp = timestamp.wrapping_add(u32::from(STEP) * u32::from(steps));
        tokio::time::sleep(gap).await;
        timestamp = timestamp.wrapping_add((gap.as_millis() as u32) * 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_rfc4733_events() {
        let codes: Vec<u8> = "0189*#aD".chars().filter_map(event_code).collect();
        assert_eq!(codes, [0, 1, 8, 9, 10, 11, 12, 15]);
        assert_eq!(event_code('x'), None);
        assert_eq!(event_code('w'), None);
    }
}
