//! Recording: `Record()` takes what the caller says into a file, in the
//! foreground (the dialplan waits for `#`, silence, the time limit or a hangup);
//! `MixMonitor()` records both directions in the background until the call ends or
//! `StopMixMonitor()`. The relay session does the recording (see `media::record`);
//! this module decides when it starts and ends and what the dialplan learns.

use std::path::{Path, PathBuf};

use media::record::{Ending, RecordSpec};

use super::*;

/// How often a `Record` with a silence limit looks at how long the caller has
/// been quiet.
pub(super) const SILENCE_POLL: Duration = Duration::from_millis(200);

/// The `Record()` in progress.
pub struct ForegroundRecord {
    pub recorder: Box<dyn Recorder>,
    /// `RECORDED_FILE` as the dialplan will see it (the name without extension).
    pub file: String,
    pub silence: Option<Duration>,
    /// `k`: a hangup keeps what was recorded instead of deleting it.
    pub keep_on_hangup: bool,
}

impl std::fmt::Debug for ForegroundRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForegroundRecord")
            .field("file", &self.file)
            .finish()
    }
}

/// `Record`'s options (Asterisk's letters).
#[derive(Debug, Default, Clone, Copy)]
struct RecordOptions {
    append: bool,
    no_answer: bool,
    operator: bool,
    quiet: bool,
    skip: bool,
    star: bool,
    ignore_keys: bool,
    keep: bool,
    any_key: bool,
}

impl RecordOptions {
    fn parse(options: &str) -> RecordOptions {
        let has = |c| options.contains(c);
        RecordOptions {
            append: has('a'),
            no_answer: has('n'),
            operator: has('o'),
            quiet: has('q'),
            skip: has('s'),
            star: has('t'),
            ignore_keys: has('x'),
            keep: has('k'),
            any_key: has('y'),
        }
    }
}

impl CallAgent<'_> {
    /// Starts `Record(file,silence,max,options)`; the resume value when it cannot
    /// run at all, None when the dialplan now waits for it.
    pub(super) fn start_record(
        &mut self,
        call: &mut Call,
        file: &str,
        silence: Option<f64>,
        max_duration: Option<f64>,
        options: &str,
        now: Instant,
    ) -> Option<Resume> {
        let opts = RecordOptions::parse(options);
        let recorded = |status: &str| Resume::Recorded {
            status: status.into(),
            file: None,
        };
        if !call.a.final_sent {
            if opts.skip {
                return Some(recorded("SKIP"));
            }
            if !opts.no_answer {
                self.answer_caller(call, None, now);
            }
        }
        let Some((path, name)) = self.recording_path(file) else {
            tracing::warn!(call = %call.uniqueid, file, "Record needs a file name with a format extension (e.g. message.wav)");
            return Some(recorded("ERROR"));
        };
        let Some(relay) = call.relay.as_ref() else {
            return Some(recorded("ERROR"));
        };
        let spec = RecordSpec {
            path,
            sides: [true, false],
            append: opts.append,
        };
        let recorder = match relay.record(&spec) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(call = %call.uniqueid, "cannot record: {e}");
                return Some(recorded("ERROR"));
            }
        };
        if !opts.quiet {
            let payload_type = playback::caller_playback(call);
            let beep = media::tones::beep().encode(payload_type);
            relay.play(RelaySide::A, beep.into(), payload_type, false);
        }
        let silence = silence
            .filter(|s| *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
        let limit = max_duration
            .filter(|m| *m > 0.0)
            .map_or(Duration::from_secs(86_400), |m| {
                Duration::from_secs_f64(m.min(86_400.0))
            });
        call.park(
            now + limit,
            Resume::Recorded {
                status: "TIMEOUT".into(),
                file: Some(name.clone()),
            },
        );
        if silence.is_some() {
            call.arm(now + SILENCE_POLL, Timer::RecordSilence);
        }
        call.listen = Listen::Record {
            terminators: if opts.ignore_keys {
                String::new()
            } else if opts.any_key {
                "0123456789*#ABCD".into()
            } else if opts.star {
                "*".into()
            } else {
                "#".into()
            },
            operator: opts.operator,
        };
        call.recording = Some(ForegroundRecord {
            recorder,
            file: name,
            silence,
            keep_on_hangup: opts.keep,
        });
        None
    }

    /// A digit during `Record`: the status it ends with, if it ends it.
    pub(super) fn record_digit(
        call: &mut Call,
        digit: char,
        terminators: &str,
        operator: bool,
    ) -> Option<Resume> {
        let status = if operator && digit == '0' {
            "OPERATOR"
        } else if terminators.contains(digit) {
            "DTMF"
        } else {
            return None;
        };
        Some(call.end_record(status, Ending::Keep))
    }

    /// The silence poll: ends the recording once the caller has been quiet for
    /// the limit, cutting that silence off the end.
    pub(super) fn record_silence_check(call: &mut Call, now: Instant) -> Option<Resume> {
        let rec = call.recording.as_ref()?;
        let limit = rec.silence?;
        if rec.recorder.silent_for(now) < limit {
            call.arm(now + SILENCE_POLL, Timer::RecordSilence);
            return None;
        }
        Some(call.end_record("SILENCE", Ending::TrimSilence))
    }

    /// `MixMonitor(file,options)`: both directions, in the background.
    pub(super) fn start_mixmonitor(&mut self, call: &mut Call, file: &str, options: &str) {
        let Some((path, _)) = self.recording_path(file) else {
            tracing::warn!(call = %call.uniqueid, file, "MixMonitor needs a file name with a format extension (e.g. call.wav)");
            return;
        };
        let Some(relay) = call.relay.as_ref() else {
            tracing::warn!(call = %call.uniqueid, "MixMonitor on a call without media");
            return;
        };
        let spec = RecordSpec {
            path,
            sides: [true, true],
            append: options.contains('a'),
        };
        match relay.record(&spec) {
            Ok(r) => call.monitors.push(r),
            Err(e) => tracing::warn!(call = %call.uniqueid, "cannot start MixMonitor: {e}"),
        }
    }

    /// Where a recording named `file` goes, and the name `RECORDED_FILE` reports:
    /// relative names land in `[media] recordings`; `%d` becomes the first number
    /// that names no existing file. None without a format extension.
    fn recording_path(&self, file: &str) -> Option<(PathBuf, String)> {
        let config = self.svc.config();
        let dir = config.resolve(&config.media.recordings);
        let full = |f: &str| {
            if Path::new(f).is_absolute() {
                PathBuf::from(f)
            } else {
                dir.join(f)
            }
        };
        let chosen = if file.contains("%d") {
            (0..100_000)
                .map(|n| file.replace("%d", &n.to_string()))
                .find(|f| !full(f).exists())?
        } else {
            file.to_string()
        };
        let path = full(&chosen);
        let path = std::path::absolute(&path).unwrap_or(path);
        let ext = path.extension()?.to_str()?;
        media::record::Format::from_extension(ext)?;
        // What Playback(${RECORDED_FILE}) finds: the absolute path, no extension.
        let name = path.with_extension("").to_string_lossy().into_owned();
        Some((path, name))
    }
}

impl Call {
    /// Ends the foreground recording with `status` and stops the dialplan waiting
    /// for it.
    pub(super) fn end_record(&mut self, status: &str, ending: Ending) -> Resume {
        let file = self.recording.take().map(|r| {
            r.recorder.finish(ending);
            r.file
        });
        self.unpark();
        Resume::Recorded {
            status: status.into(),
            file,
        }
    }

    /// The call is over: a `Record` in progress is dropped (kept with `k`), and
    /// every MixMonitor file is completed.
    pub(super) fn end_recordings(&mut self) {
        if let Some(r) = self.recording.take() {
            let keep = r.keep_on_hangup;
            r.recorder
                .finish(if keep { Ending::Keep } else { Ending::Discard });
        }
        for m in self.monitors.drain(..) {
            m.finish(Ending::Keep);
        }
    }
}
