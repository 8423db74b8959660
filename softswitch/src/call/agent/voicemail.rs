//! The call agent's side of `VoiceMail` and `VoiceMailMain`: the voicemail state
//! machines (`crate::voicemail`) decide; this module plays their prompts, records
//! their messages, hands them the caller's digits and tells the mailbox's phones
//! when messages change.
//!
//! While an application runs, every input the dialplan would have resumed with
//! (a prompt's end, a digit, a recording's end, a hangup) goes to the machine
//! instead; its `Done` becomes the dialplan's resume value.

use media::record::RecordSpec;

use super::record::ForegroundRecord;
use super::*;
use crate::voicemail::leave::{Leave, Limits};
use crate::voicemail::menu::Menu;
use crate::voicemail::spool::Meta;
use crate::voicemail::{Event, MailboxId, Spool, Step};

/// A voicemail application in progress on a call.
#[derive(Debug)]
pub enum AppRun {
    Leave(Box<Leave>),
    Menu(Box<Menu>),
}

impl CallAgent<'_> {
    fn spool(&self) -> Spool {
        self.svc.spool()
    }

    /// Starts `VoiceMail(mailboxes,options)`; the dialplan's resume value once it
    /// is over, None while it runs.
    pub(super) fn start_voicemail(
        &mut self,
        call: &mut Call,
        mailboxes: &[String],
        options: &str,
        now: Instant,
    ) -> Option<Resume> {
        let config = self.svc.config();
        let id = mailboxes
            .first()
            .and_then(|m| MailboxId::parse(m))
            .filter(|id| config.mailbox(id).is_some());
        if id.is_none() {
            tracing::warn!(call = %call.uniqueid, mailbox = ?mailboxes.first(), "VoiceMail: no such mailbox in [[mailbox]]");
        }
        if mailboxes.len() > 1 {
            tracing::warn!(call = %call.uniqueid, "VoiceMail: the message goes to the first mailbox only");
        }
        let v = &config.voicemail;
        let limits = Limits {
            max_message: Duration::from_secs(v.max_message.max(1)),
            min_message: Duration::from_secs_f64(v.min_message.max(0.0)),
            max_silence: Duration::from_secs(v.max_silence),
            max_messages: v.max_messages,
        };
        let meta = Meta {
            callerid: call.cdr.clid.clone(),
            origtime: self.wall_secs(),
            duration: 0,
            exten: call.cdr.dst.clone(),
            context: call.cdr.dcontext.clone(),
            msg_id: String::new(),
        };
        if !call.a.final_sent {
            self.answer_caller(call, None, now);
        }
        let app = AppRun::Leave(Box::new(Leave::new(id, options, limits, meta)));
        self.run_app(call, app, Event::Start, now)
    }

    /// Starts `VoiceMailMain([mailbox],options)`.
    pub(super) fn start_voicemail_main(
        &mut self,
        call: &mut Call,
        mailbox: Option<&str>,
        options: &str,
        now: Instant,
    ) -> Option<Resume> {
        if !call.a.final_sent {
            self.answer_caller(call, None, now);
        }
        let app = AppRun::Menu(Box::new(Menu::new(mailbox, options)));
        self.run_app(call, app, Event::Start, now)
    }

    /// While an application runs, turns what the dialplan would have resumed with
    /// into the machine's event. Returns the input for the dialplan: the
    /// application's outcome once it is done, a hangup as it was, or None while
    /// it still runs.
    pub(super) fn app_input(
        &mut self,
        call: &mut Call,
        input: Resume,
        now: Instant,
    ) -> Option<Resume> {
        let Some(app) = call.app.take() else {
            return Some(input);
        };
        let event = match &input {
            Resume::CallerHangup => {
                // A recording the hangup cut short is already complete (kept):
                // the machine files it; nothing more is played.
                let mut app = app;
                let spool = self.spool();
                let _ = step_of(
                    &mut app,
                    Event::Recorded { hangup: true },
                    &spool,
                    self.svc.config(),
                );
                self.announce_changes(&mut app);
                return Some(input);
            }
            Resume::Recorded { .. } => Event::Recorded { hangup: false },
            Resume::Digit(c) => Event::Digit(*c),
            _ => Event::Ended,
        };
        self.run_app(call, app, event, now)
    }

    /// Feeds `event` to the machine and carries out its steps until one waits.
    fn run_app(
        &mut self,
        call: &mut Call,
        mut app: AppRun,
        event: Event,
        now: Instant,
    ) -> Option<Resume> {
        let spool = self.spool();
        let mut event = event;
        // Bounded: a machine that kept answering at once would otherwise spin.
        for _ in 0..64 {
            let step = step_of(&mut app, event, &spool, self.svc.config());
            self.announce_changes(&mut app);
            match step {
                Step::Continue => {
                    call.app = Some(app);
                    return None;
                }
                Step::Done { status, exit } => {
                    return Some(match app {
                        AppRun::Leave(_) => Resume::VoiceMail {
                            status: status.into(),
                            exit,
                        },
                        AppRun::Menu(_) => Resume::Done,
                    });
                }
                Step::Play { files, cut, wait } => {
                    let length = if files.is_empty() {
                        Some(Duration::ZERO)
                    } else {
                        self.play(call, &files, None, false, now)
                    };
                    let length = length.unwrap_or_else(|| {
                        tracing::warn!(call = %call.uniqueid, ?files, "voicemail prompt missing: skipped");
                        Duration::ZERO
                    });
                    if length.is_zero() && wait.is_zero() {
                        event = Event::Ended;
                        continue;
                    }
                    call.park(now + length + wait, Resume::Done);
                    call.listen = Listen::App { cut };
                    call.app = Some(app);
                    return None;
                }
                Step::Record { path, max, silence } => {
                    match self.record_message(call, path, max, silence, now) {
                        Ok(()) => {
                            call.app = Some(app);
                            return None;
                        }
                        Err(e) => {
                            tracing::error!(call = %call.uniqueid, "cannot record a message: {e}");
                            event = Event::Recorded { hangup: false };
                        }
                    }
                }
            }
        }
        tracing::error!(call = %call.uniqueid, "voicemail application did not settle");
        Some(Resume::AppFailed)
    }

    /// A beep, then the caller's message until `#`, silence, `max` or a hangup
    /// (which keeps it).
    fn record_message(
        &mut self,
        call: &mut Call,
        path: std::path::PathBuf,
        max: Duration,
        silence: Duration,
        now: Instant,
    ) -> Result<(), String> {
        let relay = call.relay.as_ref().ok_or("the call has no media")?;
        tracing::info!(call = %call.uniqueid, file = %path.display(), "voicemail: recording a message");
        let recorder = relay.record(&RecordSpec {
            path: path.clone(),
            sides: [true, false],
            append: false,
        })?;
        let payload_type = playback::caller_playback(call);
        let beep = media::tones::beep().encode(payload_type);
        relay.play(RelaySide::A, beep.into(), payload_type, false);
        call.park(
            now + max,
            Resume::Recorded {
                status: "TIMEOUT".into(),
                file: None,
            },
        );
        if !silence.is_zero() {
            call.arm(now + record::SILENCE_POLL, Timer::RecordSilence);
        }
        call.listen = Listen::Record {
            terminators: "#".into(),
            operator: false,
        };
        call.recording = Some(ForegroundRecord {
            recorder,
            file: path.with_extension("").to_string_lossy().into_owned(),
            silence: (!silence.is_zero()).then_some(silence),
            keep_on_hangup: true,
        });
        Ok(())
    }

    /// Tells the mailbox's phones when the machine changed its messages.
    fn announce_changes(&self, app: &mut AppRun) {
        let changed = match app {
            AppRun::Leave(l) => std::mem::take(&mut l.saved).then(|| l.mailbox().cloned()),
            AppRun::Menu(m) => std::mem::take(&mut m.changed).then(|| m.mailbox().cloned()),
        };
        if let Some(Some(id)) = changed {
            self.svc.mailbox_changed(&id);
        }
    }
}

fn step_of(app: &mut AppRun, event: Event, spool: &Spool, config: &crate::config::Config) -> Step {
    match app {
        AppRun::Leave(l) => l.on(event, spool),
        AppRun::Menu(m) => {
            let lookup = |id: &MailboxId| config.mailbox(id).map(|m| m.pin.clone());
            m.on(event, spool, &lookup)
        }
    }
}
