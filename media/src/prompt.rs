//! Prompts: sound files read once and kept as 8 kHz 16-bit samples, encoded into
//! the call's codec when played.
//!
//! WAV files may hold 16-bit PCM, µ-law or A-law, mono at 8 kHz (what the shipped
//! prompts and Asterisk's `.wav` sounds are). Headerless files are named by their
//! extension as Asterisk does: `.ulaw`/`.ul` (µ-law), `.alaw`/`.al` (A-law),
//! `.sln`/`.raw` (16-bit little-endian linear). The WAV reader is written here
//! because the usual crate reads PCM only, not the G.711 formats phones' sounds
//! come in.

use std::path::Path;
use std::time::Duration;

use crate::g711;

/// Samples per second of every prompt.
pub const RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    samples: Vec<i16>,
}

impl Prompt {
    pub fn from_samples(samples: Vec<i16>) -> Prompt {
        Prompt { samples }
    }

    /// Reads a sound file; the format comes from its extension (and its header, for WAV).
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| PromptError::Io {
            path: shown.clone(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let samples = match ext.as_str() {
            "wav" => parse_wav(&bytes).map_err(|message| PromptError::Format {
                path: shown.clone(),
                message,
            })?,
            "ulaw" | "ul" | "pcm" => bytes.iter().map(|&b| g711::ulaw_decode(b)).collect(),
            "alaw" | "al" => bytes.iter().map(|&b| g711::alaw_decode(b)).collect(),
            "sln" | "raw" => bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
            other => {
                return Err(PromptError::Format {
                    path: shown,
                    message: format!("unknown sound format `.{other}`"),
                });
            }
        };
        Ok(Prompt { samples })
    }

    /// The extensions [`Prompt::load`] understands, in the order a lookup tries them.
    pub const EXTENSIONS: [&'static str; 7] = ["wav", "ulaw", "ul", "alaw", "al", "sln", "raw"];

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(RATE))
    }

    /// Several prompts played back to back.
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Prompt>) -> Prompt {
        Prompt {
            samples: parts
                .into_iter()
                .flat_map(|p| p.samples.iter().copied())
                .collect(),
        }
    }

    /// The prompt as RTP payload for payload type 0 (PCMU), 8 (PCMA) or 9 (G.722;
    /// the 8 kHz sound doubled to 16 kHz, so it sounds as it would in G.711).
    /// Every payload type gives 8 bytes per millisecond, so the player's 160-byte
    /// packets are 20 ms in each.
    pub fn encode(&self, payload_type: u8) -> Vec<u8> {
        if payload_type == 9 {
            return self.encode_g722();
        }
        let encode = if payload_type == 8 {
            g711::alaw_encode
        } else {
            g711::ulaw_encode
        };
        self.samples.iter().map(|&s| encode(s)).collect()
    }

    fn encode_g722(&self) -> Vec<u8> {
        use audio_codec::Encoder as _;
        // Whole 20 ms frames, padded with silence: a G.722 byte stream has no
        // silence byte a player could pad with.
        let frames = self.samples.len().div_ceil(160).max(1);
        let mut wide = Vec::with_capacity(frames * 320);
        for (k, &s) in self.samples.iter().enumerate() {
            let next = self.samples.get(k + 1).copied().unwrap_or(s);
            wide.push(s);
            wide.push(((i32::from(s) + i32::from(next)) / 2) as i16);
        }
        wide.resize(frames * 320, 0);
        audio_codec::g722::G722Encoder::new().encode(&wide)
    }
}

/// The samples of a mono 8 kHz WAV file in PCM-16, µ-law or A-law.
fn parse_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut format = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let declared = u32_at(bytes, at + 4) as usize;
        let body = at + 8;
        // A writer that never patched the sizes (still recording) leaves 0 or
        // 0xFFFFFFFF: the data runs to the end of the file.
        let end = if declared == 0 || body + declared > bytes.len() {
            bytes.len()
        } else {
            body + declared
        };
        match id {
            b"fmt " if end - body >= 16 => {
                let mut tag = u16_at(bytes, body);
                if tag == 0xfffe && end - body >= 26 {
                    // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
                    tag = u16_at(bytes, body + 24);
                }
                let channels = u16_at(bytes, body + 2);
                let rate = u32_at(bytes, body + 4);
                let bits = u16_at(bytes, body + 14);
                format = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let (tag, channels, rate, bits) =
                    format.ok_or("the data chunk comes before the fmt chunk")?;
                if channels != 1 || rate != RATE {
                    return Err(format!(
                        "{channels} channel(s) at {rate} Hz; prompts must be mono 8000 Hz \
                         (sox in.wav -r 8000 -c 1 -b 16 out.wav)"
                    ));
                }
                let data = &bytes[body..end];
                return match (tag, bits) {
                    (1, 16) => Ok(data
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect()),
                    (7, 8) => Ok(data.iter().map(|&b| g711::ulaw_decode(b)).collect()),
                    (6, 8) => Ok(data.iter().map(|&b| g711::alaw_decode(b)).collect()),
                    _ => Err(format!(
                        "format {tag} with {bits} bits; prompts must be 16-bit PCM, µ-law or A-law"
                    )),
                };
            }
            _ => {}
        }
        at = end + (end - body) % 2;
    }
    Err("no data chunk".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend(((36 + data.len()) as u32).to_le_bytes());
        v.extend(b"WAVEfmt ");
        v.extend(16u32.to_le_bytes());
        v.extend(tag.to_le_bytes());
        v.extend(channels.to_le_bytes());
        v.extend(rate.to_le_bytes());
        let block = channels * bits / 8;
        v.extend((rate * u32::from(block)).to_le_bytes());
        v.extend(block.to_le_bytes());
        v.extend(bits.to_le_bytes());
        v.extend(b"data");
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn reads_pcm_ulaw_and_alaw_wav() {
        let pcm: Vec<u8> = [0i16, 1000, -1000]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        assert_eq!(
            parse_wav(&wav(1, 1, 8000, 16, &pcm)).unwrap(),
            [0, 1000, -1000]
        );
        let ulaw = [g711::ulaw_encode(1000)];
        assert_eq!(
            parse_wav(&wav(7, 1, 8000, 8, &ulaw)).unwrap(),
            [g711::ulaw_decode(ulaw[0])]
        );
        let alaw = [g711::alaw_encode(-1000)];
        assert_eq!(
            parse_wav(&wav(6, 1, 8000, 8, &alaw)).unwrap(),
            [g711::alaw_decode(alaw[0])]
        );
    }

    #[test]
    fn refuses_what_it_cannot_play_with_a_reason() {
        let e = parse_wav(&wav(1, 2, 8000, 16, &[0; 8])).unwrap_err();
        assert!(e.contains("mono 8000 Hz"), "{e}");
        let e = parse_wav(&wav(1, 1, 16000, 16, &[0; 8])).unwrap_err();
        assert!(e.contains("16000"), "{e}");
        let e = parse_wav(&wav(3, 1, 8000, 32, &[0; 8])).unwrap_err();
        assert!(e.contains("format 3"), "{e}");
        assert!(parse_wav(b"not a wav").is_err());
    }

    #[test]
    fn duration_concat_and_encoding() {
        let a = Prompt::from_samples(vec![0; 8000]);
        let b = Prompt::from_samples(vec![1000; 4000]);
        let ab = Prompt::concat([&a, &b]);
        assert_eq!(ab.duration(), Duration::from_millis(1500));
        assert_eq!(ab.encode(0)[0], 0xff);
        assert_eq!(ab.encode(8)[0], 0xd5);
        assert_eq!(ab.encode(0).len(), 12000);
    }
}

#[cfg(test)]
mod g722_tests {
    use super::*;
    use audio_codec::Decoder as _;

    /// A 1 kHz prompt encoded as G.722 decodes (at 16 kHz) back to 1 kHz, one
    /// 160-byte packet per 20 ms.
    #[test]
    fn prompts_encode_to_g722_that_decodes_to_the_same_tone() {
        let samples: Vec<i16> = (0..8000)
            .map(|k| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * k as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let payload = Prompt::from_samples(samples).encode(9);
        assert_eq!(payload.len(), 8000, "8 bytes per ms, like G.711");
        let decoded = audio_codec::g722::G722Decoder::new().decode(&payload);
        assert_eq!(decoded.len(), 16000);
        let power = |f: f64| {
            let w = 2.0 * std::f64::consts::PI * f / 16000.0;
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &x in &decoded[4000..] {
                let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
        };
        assert!(power(1000.0) > 100.0 * power(3000.0), "the tone survives");
    }
}
