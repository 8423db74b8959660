//! Recording a call's audio to a file: one direction (the dialplan's `Record`,
//! voicemail) or both mixed (`MixMonitor`).
//!
//! The relay task only copies each G.711 packet of a recorded side into a bounded
//! channel (no allocation, no I/O, nothing waited on: a full channel drops the
//! frame). A thread per recording decodes, places and mixes the frames and writes
//! the file, so disk latency never reaches the packet path.
//!
//! Where a frame lands in the file: each direction is anchored where its first
//! packet arrived (wall clock since the recording started) and later packets are
//! placed by their RTP timestamps, so lost packets leave silence in the right
//! place and jitter does not smear the audio. A new SSRC, or a timestamp that
//! disagrees with the arrival time by more than a second, re-anchors. The two
//! directions are summed sample by sample; audio is held back one second before
//! it is written so the slower direction can still be mixed in.
//!
//! Files: `.wav` is 8 kHz 16-bit mono PCM (what Asterisk's `wav` is), `.ulaw`/`.ul`,
//! `.alaw`/`.al` are headerless G.711, `.sln`/`.raw` headerless 16-bit linear. The
//! WAV header is written by hand because the file is patched as it grows (so a
//! crash leaves a playable file), appended to, and truncated when trailing silence
//! is cut; a WAV crate would hide exactly those operations.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::g711;
use crate::prompt::RATE;

/// Bytes of G.711 one frame carries (60 ms); longer payloads are sent as several.
pub(crate) const MAX_FRAME: usize = 480;

/// Frames the relay may queue ahead of the writer: 10 s of both directions at 20 ms.
const QUEUE: usize = 1000;

/// How long the writer holds audio back for the other direction to catch up.
const HOLD_BACK: u64 = RATE as u64;

/// Mean absolute amplitude of a frame above which it counts as voice (Asterisk's
/// default silence threshold is of the same order).
const VOICE_THRESHOLD: u32 = 256;

/// The longest [`Recording::finish`] waits for the file to be complete.
pub const FINISH_WAIT: Duration = Duration::from_millis(500);

/// Audio kept after the last voiced frame when trailing silence is cut.
const TAIL_KEPT: u64 = RATE as u64 / 5;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: unknown recording format `.{ext}` (use wav, ulaw, alaw or sln)")]
    Format { path: String, ext: String },
    #[error("{path}: cannot append: {why}")]
    Append { path: String, why: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// How a recording is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RIFF/WAVE, 16-bit PCM.
    Wav,
    Ulaw,
    Alaw,
    /// Headerless 16-bit little-endian.
    Sln,
}

impl Format {
    /// The format an extension names, as Asterisk's file formats do.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "wav" => Format::Wav,
            "ulaw" | "ul" | "pcm" => Format::Ulaw,
            "alaw" | "al" => Format::Alaw,
            "sln" | "raw" => Format::Sln,
            _ => return None,
        })
    }

    fn header_len(self) -> u64 {
        if self == Format::Wav { 44 } else { 0 }
    }

    fn bytes_per_sample(self) -> u64 {
        match self {
            Format::Wav | Format::Sln => 2,
            Format::Ulaw | Format::Alaw => 1,
        }
    }

    fn encode(self, sample: i16, out: &mut Vec<u8>) {
        match self {
            Format::Wav | Format::Sln => out.extend_from_slice(&sample.to_le_bytes()),
            Format::Ulaw => out.push(g711::ulaw_encode(sample)),
            Format::Alaw => out.push(g711::alaw_encode(sample)),
        }
    }
}

/// What to record and where.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    pub path: PathBuf,
    /// Which sides' audio goes in: `[A, B]`.
    pub sides: [bool; 2],
    /// Add to the end of an existing file instead of replacing it.
    pub append: bool,
}

/// How a recording ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Keep everything.
    Keep,
    /// Keep it, minus the silence after the last voiced audio (a recording ended by
    /// silence should not end with that silence).
    TrimSilence,
    /// Delete the file (a caller who hung up during `Record` without `k`).
    Discard,
}

/// What the writer thread receives. Frames travel inline, not boxed: boxing would
/// allocate once per packet on the relay's thread.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Frame(Frame),
    /// Wake up: `State::stop` is set.
    Stop,
}

/// One G.711 frame on its way from the relay task to the writer.
pub(crate) struct Frame {
    side: u8,
    payload_type: u8,
    len: u16,
    ssrc: u32,
    timestamp: u32,
    /// Nanoseconds since the recording started.
    arrival: u64,
    data: [u8; MAX_FRAME],
}

/// The relay task's end of a recording.
pub(crate) struct RecordTap {
    tx: SyncSender<Msg>,
    sides: [bool; 2],
    started: Instant,
    state: Arc<State>,
}

impl std::fmt::Debug for RecordTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordTap")
            .field("sides", &self.sides)
            .finish()
    }
}

impl crate::relay::Tap for RecordTap {
    /// Queues the G.711 payload of one RTP packet from `side`; anything else is
    /// not recorded. Never blocks: a full queue drops the frame. The packet still
    /// goes on to the other side.
    fn push(
        &self,
        side: usize,
        header: &crate::rtp::RtpHeader,
        packet: &[u8],
        now: Instant,
    ) -> bool {
        if !self.sides[side] || (header.payload_type != 0 && header.payload_type != 8) {
            return false;
        }
        let arrival = u64::try_from(now.saturating_duration_since(self.started).as_nanos())
            .unwrap_or(u64::MAX);
        let payload = packet
            .get(header.payload_offset..header.payload_offset + header.payload_len)
            .unwrap_or_default();
        for (k, chunk) in payload.chunks(MAX_FRAME).enumerate() {
            let mut frame = Frame {
                side: side as u8,
                payload_type: header.payload_type,
                len: chunk.len() as u16,
                ssrc: header.ssrc,
                timestamp: header.timestamp.wrapping_add((k * MAX_FRAME) as u32),
                arrival,
                data: [0; MAX_FRAME],
            };
            frame.data[..chunk.len()].copy_from_slice(chunk);
            if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Frame(frame)) {
                self.state.dropped.fetch_add(1, Relaxed);
            }
        }
        false
    }
}

/// What the writer thread and the control handle share.
struct State {
    stop: AtomicBool,
    ending: AtomicU8,
    /// Nanoseconds after the start of the end of the last voiced frame; 0 for none yet.
    last_voice: AtomicU64,
    dropped: AtomicU64,
}

/// The control handle of a running recording. Dropping it keeps what was recorded.
pub struct Recording {
    id: u64,
    started: Instant,
    state: Arc<State>,
    path: PathBuf,
    detach: Option<Box<dyn FnOnce(u64) + Send>>,
    wake: SyncSender<Msg>,
    /// Closed by the writer when the file is complete.
    done: Option<Receiver<()>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .finish()
    }
}

impl Recording {
    /// Opens the file and starts the writer; the caller installs the returned tap
    /// on the relay task and gives `detach` to remove it again.
    pub(crate) fn start(
        spec: &RecordSpec,
        id: u64,
        detach: Box<dyn FnOnce(u64) + Send>,
    ) -> Result<(Recording, RecordTap), RecordError> {
        let shown = spec.path.display().to_string();
        let ext = spec.path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let format = Format::from_extension(ext).ok_or_else(|| RecordError::Format {
            path: shown.clone(),
            ext: ext.to_string(),
        })?;
        let io_err = |source| RecordError::Io {
            path: shown.clone(),
            source,
        };
        if let Some(dir) = spec.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let (file, existing) = open(&spec.path, format, spec.append).map_err(|e| match e {
            Opened::Io(source) => RecordError::Io {
                path: shown.clone(),
                source,
            },
            Opened::NotAppendable(why) => RecordError::Append {
                path: shown.clone(),
                why,
            },
        })?;
        let state = Arc::new(State {
            stop: AtomicBool::new(false),
            ending: AtomicU8::new(0),
            last_voice: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let mut writer = Writer {
            file,
            format,
            path: spec.path.clone(),
            data_start: existing,
            flushed: 0,
            mix: VecDeque::new(),
            anchors: [None; 2],
            last_voice_end: None,
            state: Arc::clone(&state),
            scratch: Vec::new(),
        };
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                writer.run(rx);
                drop(done_tx);
            })
            .map_err(io_err)?;
        let tap = RecordTap {
            tx: tx.clone(),
            sides: spec.sides,
            started,
            state: Arc::clone(&state),
        };
        Ok((
            Recording {
                id,
                started,
                state,
                path: spec.path.clone(),
                detach: Some(detach),
                wake: tx,
                done: Some(done_rx),
            },
            tap,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long it has been recording, as of `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Time since the last voiced audio (or since the start, when none came yet).
    pub fn silent_for(&self, now: Instant) -> Duration {
        let voice = self.started + Duration::from_nanos(self.state.last_voice.load(Relaxed));
        now.saturating_duration_since(voice)
    }

    /// Frames the writer could not keep up with (normally 0).
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Relaxed)
    }

    /// Stops recording; the file is complete (or gone, for `Discard`) when this
    /// returns, unless the disk takes longer than [`FINISH_WAIT`]: the writer holds
    /// at most a couple of seconds of audio, so this is normally a millisecond.
    pub fn finish(mut self, ending: Ending) {
        self.stop(ending, true);
    }

    fn stop(&mut self, ending: Ending, wait: bool) {
        if let Some(detach) = self.detach.take() {
            detach(self.id);
        }
        let code = match ending {
            Ending::Keep => 0,
            Ending::TrimSilence => 1,
            Ending::Discard => 2,
        };
        self.state.ending.store(code, Relaxed);
        self.state
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        // A full queue means the writer is awake anyway and sees the flag.
        let _ = self.wake.try_send(Msg::Stop);
        if let Some(done) = self.done.take()
            && wait
        {
            let _ = done.recv_timeout(FINISH_WAIT);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A session torn down mid-recording keeps what it has; the writer finishes
        // on its own without holding up the caller.
        self.stop(Ending::Keep, false);
    }
}

enum Opened {
    Io(io::Error),
    NotAppendable(String),
}

impl From<io::Error> for Opened {
    fn from(e: io::Error) -> Self {
        Opened::Io(e)
    }
}

/// Opens (or creates) the file; returns it positioned after any existing audio,
/// and how many bytes of audio it already holds.
fn open(path: &Path, format: Format, append: bool) -> Result<(File, u64), Opened> {
    if append && path.exists() {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let existing = if format == Format::Wav {
            let mut header = [0u8; 44];
            file.read_exact(&mut header)
                .map_err(|_| Opened::NotAppendable("shorter than a WAV header".into()))?;
            let canonical = &header[0..4] == b"RIFF"
                && &header[8..16] == b"WAVEfmt "
                && u16::from_le_bytes([header[20], header[21]]) == 1
                && u16::from_le_bytes([header[22], header[23]]) == 1
                && u32::from_le_bytes([header[24], header[25], header[26], header[27]]) == RATE
                && u16::from_le_bytes([header[34], header[35]]) == 16
                && &header[36..40] == b"data";
            if !canonical {
                return Err(Opened::NotAppendable(
                    "not an 8 kHz 16-bit mono WAV file as this switch records".into(),
                ));
            }
            (len - 44) & !1
        } else {
            len - len % format.bytes_per_sample()
        };
        file.seek(SeekFrom::Start(format.header_len() + existing))?;
        return Ok((file, existing));
    }
    let mut file = File::create(path)?;
    if format == Format::Wav {
        file.write_all(&wav_header(0))?;
    }
    Ok((file, 0))
}

/// The canonical 44-byte header of 8 kHz 16-bit mono PCM with `data` bytes of audio.
fn wav_header(data: u64) -> [u8; 44] {
    let data = u32::try_from(data).unwrap_or(u32::MAX - 36);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(RATE * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// Where one direction's timestamps meet the recording's sample clock.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: u64,
}

struct Writer {
    file: File,
    format: Format,
    path: PathBuf,
    /// Bytes of audio the file held before this recording (append).
    data_start: u64,
    /// Samples of this recording already written.
    flushed: u64,
    /// Mixed samples from `flushed` on.
    mix: VecDeque<i32>,
    anchors: [Option<Anchor>; 2],
    /// Sample position just after the last voiced frame.
    last_voice_end: Option<u64>,
    state: Arc<State>,
    scratch: Vec<u8>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Msg>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Msg::Frame(frame)) => self.place(&frame),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.state.stop.load(std::sync::atomic::Ordering::Acquire) {
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Frame(frame) = msg {
                        self.place(&frame);
                    }
                }
                break;
            }
            let end = self.flushed + self.mix.len() as u64;
            if end > self.flushed + 2 * HOLD_BACK
                && let Err(e) = self.flush_to(end - HOLD_BACK)
            {
                tracing::warn!(path = %self.path.display(), error = %e, "recording write failed");
                break;
            }
        }
        if let Err(e) = self.finish() {
            tracing::warn!(path = %self.path.display(), error = %e, "recording could not be completed");
        }
    }

    fn place(&mut self, frame: &Frame) {
        let side = usize::from(frame.side);
        let by_arrival = frame.arrival * u64::from(RATE) / 1_000_000_000;
        let position = match self.anchors[side] {
            Some(a) if a.ssrc == frame.ssrc => {
                let delta = i64::from(frame.timestamp.wrapping_sub(a.timestamp) as i32);
                let by_timestamp = a.position as i64 + delta;
                if (by_timestamp - by_arrival as i64).abs() > RATE as i64 || by_timestamp < 0 {
                    None
                } else {
                    Some(by_timestamp as u64)
                }
            }
            _ => None,
        };
        let position = position.unwrap_or_else(|| {
            self.anchors[side] = Some(Anchor {
                ssrc: frame.ssrc,
                timestamp: frame.timestamp,
                position: by_arrival,
            });
            by_arrival
        });
        let decode = if frame.payload_type == 8 {
            g711::alaw_decode
        } else {
            g711::ulaw_decode
        };
        let payload = &frame.data[..usize::from(frame.len)];
        let mut energy = 0u32;
        for (k, &code) in payload.iter().enumerate() {
            let sample = decode(code);
            energy += u32::from(sample.unsigned_abs());
            let at = position + k as u64;
            if at < self.flushed {
                continue; // later than the hold-back: this part is already on disk
            }
            let index = (at - self.flushed) as usize;
            if index >= self.mix.len() {
                self.mix.resize(index + 1, 0);
            }
            self.mix[index] += i32::from(sample);
        }
        if !payload.is_empty() && energy / payload.len() as u32 > VOICE_THRESHOLD {
            let end = position + payload.len() as u64;
            self.last_voice_end = Some(self.last_voice_end.map_or(end, |e| e.max(end)));
            let nanos = frame.arrival + payload.len() as u64 * 1_000_000_000 / u64::from(RATE);
            self.state.last_voice.fetch_max(nanos, Relaxed);
        }
    }

    /// Writes mixed samples up to position `upto` and patches the header.
    fn flush_to(&mut self, upto: u64) -> io::Result<()> {
        let n = upto.saturating_sub(self.flushed).min(self.mix.len() as u64) as usize;
        if n == 0 {
            return Ok(());
        }
        self.scratch.clear();
        for sample in self.mix.drain(..n) {
            let clipped = sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            self.format.encode(clipped, &mut self.scratch);
        }
        self.file.write_all(&self.scratch)?;
        self.flushed += n as u64;
        self.patch_header()
    }

    fn data_len(&self) -> u64 {
        self.data_start + self.flushed * self.format.bytes_per_sample()
    }

    fn patch_header(&mut self) -> io::Result<()> {
        if self.format != Format::Wav {
            return Ok(());
        }
        let header = wav_header(self.data_len());
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&header[4..8])?;
        self.file.seek(SeekFrom::Start(40))?;
        self.file.write_all(&header[40..44])?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let ending = self.state.ending.load(Relaxed);
        if ending == 2 {
            return std::fs::remove_file(&self.path);
        }
        let end = self.flushed + self.mix.len() as u64;
        let end = if ending == 1 {
            // Cut trailing silence, keeping a short tail so the last word is whole.
            self.last_voice_end.map_or(0, |v| (v + TAIL_KEPT).min(end))
        } else {
            end
        };
        if end >= self.flushed {
            self.flush_to(end)?;
        } else {
            self.flushed = end;
            let len = self.format.header_len() + self.data_len();
            self.file.set_len(len)?;
            self.file.seek(SeekFrom::End(0))?;
            self.patch_header()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Prompt;
    use crate::relay::Tap as _;

    fn header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> crate::rtp::RtpHeader {
        crate::rtp::RtpHeader {
            payload_type: pt,
            marker: false,
            seq,
            timestamp: ts,
            ssrc,
            payload_offset: 12,
            payload_len: 160,
        }
    }

    fn packet(payload: &[u8]) -> Vec<u8> {
        assert_eq!(payload.len(), 160);
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(payload);
        p
    }

    fn tone(freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|k| {
                (amplitude * (2.0 * std::f64::consts::PI * freq * k as f64 / 8000.0).sin()) as i16
            })
            .collect()
    }

    fn start(path: &Path, sides: [bool; 2], append: bool) -> (Recording, RecordTap) {
        let spec = RecordSpec {
            path: path.to_path_buf(),
            sides,
            append,
        };
        Recording::start(&spec, 1, Box::new(|_| {})).expect("start")
    }

    /// Feeds `samples` as 20 ms µ-law packets from `side`, arriving on a simulated
    /// clock from `at`.
    fn feed(tap: &RecordTap, side: usize, samples: &[i16], ssrc: u32, at: Duration) {
        for (n, chunk) in samples.chunks(160).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&s| g711::ulaw_encode(s)).collect();
            let h = header(0, n as u16, 1000 + (n * 160) as u32, ssrc);
            let now = tap.started + at + Duration::from_millis(20 * n as u64);
            tap.push(side, &h, &packet(&payload), now);
        }
    }

    #[test]
    fn one_direction_lands_in_a_playable_wav() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/one.wav");
        let (rec, tap) = start(&path, [true, false], false);
        let audio = tone(440.0, 8000.0, 8000 * 3);
        feed(&tap, 0, &audio, 7, Duration::ZERO);
        // Side B is not recorded.
        feed(&tap, 1, &tone(1000.0, 8000.0, 8000), 9, Duration::ZERO);
        rec.finish(Ending::Keep);
        let got = Prompt::load(&path).unwrap();
        assert_eq!(got.samples().len(), audio.len());
        let err: i64 = got
            .samples()
            .iter()
            .zip(&audio)
            .map(|(a, b)| (i64::from(*a) - i64::from(*b)).abs())
            .max()
            .unwrap();
        assert!(err < 300, "µ-law round trip error {err}");
    }

    #[test]
    fn both_directions_are_mixed_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mix.sln");
        let (rec, tap) = start(&path, [true, true], false);
        // A talks for the first second, B for the second one.
        feed(&tap, 0, &tone(440.0, 6000.0, 8000), 1, Duration::ZERO);
        feed(
            &tap,
            1,
            &tone(440.0, 6000.0, 8000),
            2,
            Duration::from_secs(1),
        );
        rec.finish(Ending::Keep);
        let got = Prompt::load(&path).unwrap();
        assert_eq!(got.samples().len(), 16000);
        let loud =
            |s: &[i16]| s.iter().map(|x| i64::from(x.unsigned_abs())).sum::<i64>() / s.len() as i64;
        assert!(loud(&got.samples()[..8000]) > 3000);
        assert!(loud(&got.samples()[8000..]) > 3000);
    }

    #[test]
    fn lost_packets_leave_silence_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gap.sln");
        let (rec, tap) = start(&path, [true, false], false);
        let audio = tone(440.0, 6000.0, 1600);
        for (n, chunk) in audio.chunks(160).enumerate() {
            if n == 4 {
                continue; // lost
            }
            let payload: Vec<u8> = chunk.iter().map(|&s| g711::ulaw_encode(s)).collect();
            let h = header(0, n as u16, (n * 160) as u32, 5);
            tap.push(
                0,
                &h,
                &packet(&payload),
                tap.started + Duration::from_millis(20 * n as u64),
            );
        }
        rec.finish(Ending::Keep);
        let got = Prompt::load(&path).unwrap();
        assert_eq!(got.samples().len(), 1600);
        assert!(got.samples()[640..800].iter().all(|s| *s == 0));
        assert!(
            got.samples()[800..960]
                .iter()
                .any(|s| s.unsigned_abs() > 1000)
        );
    }

    #[test]
    fn trailing_silence_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trim.wav");
        let (rec, tap) = start(&path, [true, false], false);
        let mut audio = tone(440.0, 8000.0, 8000);
        audio.extend(std::iter::repeat_n(0, 8000 * 3));
        feed(&tap, 0, &audio, 3, Duration::ZERO);
        // The writer works in the background: wait until it has seen all the voice
        // (the first second).
        let deadline = Instant::now() + Duration::from_secs(5);
        while rec.state.last_voice.load(Relaxed) < 990_000_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let silent = rec.silent_for(tap.started + Duration::from_secs(4));
        assert!(
            (2900..=3100).contains(&(silent.as_millis() as u64)),
            "{silent:?}"
        );
        rec.finish(Ending::TrimSilence);
        let got = Prompt::load(&path).unwrap();
        assert_eq!(got.samples().len() as u64, 8000 + TAIL_KEPT);
    }

    #[test]
    fn append_adds_to_the_end_and_discard_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greeting.wav");
        let (rec, tap) = start(&path, [true, false], false);
        feed(&tap, 0, &tone(440.0, 8000.0, 4000), 1, Duration::ZERO);
        rec.finish(Ending::Keep);
        let (rec, tap) = start(&path, [true, false], true);
        feed(&tap, 0, &tone(440.0, 8000.0, 4000), 1, Duration::ZERO);
        rec.finish(Ending::Keep);
        assert_eq!(Prompt::load(&path).unwrap().samples().len(), 8000);

        let (rec, tap) = start(&path, [true, false], false);
        feed(&tap, 0, &tone(440.0, 8000.0, 4000), 1, Duration::ZERO);
        rec.finish(Ending::Discard);
        assert!(!path.exists());
    }

    #[test]
    fn unknown_formats_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = |p: PathBuf, append| RecordSpec {
            path: p,
            sides: [true, false],
            append,
        };
        let err = Recording::start(&spec(dir.path().join("x.mp3"), false), 1, Box::new(|_| {}))
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown recording format `.mp3`"),
            "{err}"
        );
        let foreign = dir.path().join("f.wav");
        std::fs::write(
            &foreign,
            b"RIFF\0\0\0\0WAVEjunkjunkjunkjunkjunkjunkjunkjunkjunk",
        )
        .unwrap();
        let err = Recording::start(&spec(foreign, true), 1, Box::new(|_| {})).unwrap_err();
        assert!(err.to_string().contains("cannot append"), "{err}");
    }
}
