//! Test audio: WAV files with a known tone, and a Goertzel detector that tells whether
//! a recording carries that tone.

use std::path::Path;

/// Writes `seconds` of a `freq` Hz sine as 8 kHz 16-bit mono PCM WAV.
pub fn write_tone_wav(path: &Path, freq: f64, seconds: f64) {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..(seconds * rate as f64) as usize)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (9000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).expect("write wav");
}

/// Reads a 16-bit PCM WAV: (sample rate, samples of the first channel).
pub fn read_wav(path: &Path) -> Option<(u32, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let (mut rate, mut channels, mut bits) = (0u32, 1u16, 16u16);
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let mut len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        if id == b"data" && (len == 0 || at + 8 + len > bytes.len()) {
            // A recorder still writing (or killed) has not patched the length in yet.
            len = bytes.len() - at - 8;
        }
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes(body[4..8].try_into().ok()?);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" {
            if bits != 16 || channels == 0 {
                return None;
            }
            let frame = 2 * channels as usize;
            let samples = body
                .chunks_exact(frame)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some((rate, samples));
        }
        at += 8 + len + (len & 1);
    }
    None
}

/// Power of `freq` in `frame` relative to the frame's total power (0..1).
fn goertzel_share(frame: &[i16], rate: u32, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in frame {
        let x = x as f64;
        energy += x * x;
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy < 1e3 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    // A pure tone over N samples gives power ≈ N/2 · energy.
    (2.0 * power / (frame.len() as f64 * energy)).min(1.0)
}

/// Fraction of 20 ms frames in which `freq` dominates.
pub fn tone_fraction(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let n = (rate / 50) as usize;
    let frames: Vec<&[i16]> = samples.chunks_exact(n).collect();
    if frames.is_empty() {
        return 0.0;
    }
    let hits = frames
        .iter()
        .filter(|f| goertzel_share(f, rate, freq) > 0.5)
        .count();
    hits as f64 / frames.len() as f64
}

/// Fraction of 20 ms frames that carry both tones, each with at least a quarter
/// of the frame's energy: what a recording that mixes two phones sounds like.
pub fn both_tones_fraction(samples: &[i16], rate: u32, f1: f64, f2: f64) -> f64 {
    let n = (rate / 50) as usize;
    let frames: Vec<&[i16]> = samples.chunks_exact(n).collect();
    if frames.is_empty() {
        return 0.0;
    }
    let hits = frames
        .iter()
        .filter(|f| goertzel_share(f, rate, f1) > 0.25 && goertzel_share(f, rate, f2) > 0.25)
        .count();
    hits as f64 / frames.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_tone_it_wrote_and_not_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        write_tone_wav(&path, 440.0, 1.0);
        let (rate, samples) = read_wav(&path).expect("reads back");
        assert_eq!(rate, 8000);
        assert_eq!(samples.len(), 8000);
        assert!(tone_fraction(&samples, rate, 440.0) > 0.95);
        assert!(tone_fraction(&samples, rate, 1000.0) < 0.05);
        assert_eq!(tone_fraction(&vec![0; 8000], rate, 440.0), 0.0);
    }
}
