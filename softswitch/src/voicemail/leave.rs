//! `VoiceMail(mailbox@context,options)`: the greeting, the beep, the message, and
//! where it goes. A sans-IO machine: the agent feeds it [`Event`]s and does the
//! [`Step`]s it returns; only the spool is touched directly.

use std::path::PathBuf;
use std::time::Duration;

use super::spool::{Greeting, Meta, Spool};
use super::{Event, MailboxId, Step};

/// Limits from `[voicemail]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: Duration,
    pub min_message: Duration,
    pub max_silence: Duration,
    pub max_messages: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Full,
    Recording,
    Goodbye,
    Done,
}

#[derive(Debug)]
pub struct Leave {
    mailbox: Option<MailboxId>,
    greeting: Option<Greeting>,
    skip_instructions: bool,
    limits: Limits,
    meta: Meta,
    state: State,
    message: Option<PathBuf>,
    status: &'static str,
    /// A message was stored: the mailbox's phones are to be told.
    pub saved: bool,
}

impl Leave {
    /// `mailbox` is None when the dialplan named no configured mailbox; `options`
    /// are VoiceMail's (`u` unavailable greeting, `b` busy, `s` no instructions).
    pub fn new(mailbox: Option<MailboxId>, options: &str, limits: Limits, meta: Meta) -> Leave {
        let greeting = if options.contains('b') {
            Some(Greeting::Busy)
        } else if options.contains('u') {
            Some(Greeting::Unavailable)
        } else {
            None
        };
        Leave {
            mailbox,
            greeting,
            skip_instructions: options.contains('s'),
            limits,
            meta,
            state: State::Greeting,
            message: None,
            status: "SUCCESS",
            saved: false,
        }
    }

    pub fn mailbox(&self) -> Option<&MailboxId> {
        self.mailbox.as_ref()
    }

    pub fn on(&mut self, event: Event, spool: &Spool) -> Step {
        let Some(mailbox) = self.mailbox.clone() else {
            return self.done("FAILED", None);
        };
        match (self.state, event) {
            (State::Greeting, Event::Start) => {
                let (new, old) = spool.counts(&mailbox);
                if new + old >= self.limits.max_messages {
                    tracing::warn!(%mailbox, "mailbox full: message refused");
                    self.state = State::Full;
                    return play(&["vm-mailboxfull", "goodbye"], "", Duration::ZERO);
                }
                let mut files = match self.greeting.and_then(|g| spool.greeting(&mailbox, g)) {
                    Some(recorded) => vec![recorded],
                    None => self.default_greeting(&mailbox),
                };
                if !self.skip_instructions {
                    files.push("vm-intro".into());
                }
                Step::Play {
                    files,
                    cut: "#0*",
                    wait: Duration::ZERO,
                }
            }
            (State::Greeting, Event::Digit(k @ ('0' | '*'))) => self.done("USEREXIT", Some(k)),
            (State::Greeting, Event::Digit(_) | Event::Ended) => match spool.next_message(&mailbox)
            {
                Ok(path) => {
                    self.state = State::Recording;
                    self.message = Some(path.clone());
                    Step::Record {
                        path,
                        max: self.limits.max_message,
                        silence: self.limits.max_silence,
                    }
                }
                Err(e) => {
                    tracing::error!(%mailbox, error = %e, "cannot store a message");
                    self.done("FAILED", None)
                }
            },
            (State::Recording, Event::Recorded { hangup }) => {
                self.store(&mailbox, spool);
                if hangup {
                    let status = self.status;
                    return self.done(status, None);
                }
                self.state = State::Goodbye;
                let files: &[&str] = if self.saved {
                    &["vm-msgsaved", "goodbye"]
                } else {
                    &["goodbye"]
                };
                play(files, "", Duration::ZERO)
            }
            (State::Full, Event::Ended) => self.done("FAILED", None),
            (State::Goodbye, Event::Ended) => {
                let status = self.status;
                self.done(status, None)
            }
            // A digit nothing listens for changes nothing.
            (_, _) => Step::Continue,
        }
    }

    /// "The person at extension 1 0 0 1 is unavailable / is on the phone."
    fn default_greeting(&self, mailbox: &MailboxId) -> Vec<String> {
        let Some(kind) = self.greeting else {
            return Vec::new();
        };
        let mut files = vec!["vm-theperson".to_string()];
        files.extend(
            mailbox
                .number
                .chars()
                .filter(char::is_ascii_digit)
                .map(|d| format!("digits/{d}")),
        );
        files.push(
            match kind {
                Greeting::Unavailable => "vm-isunavail",
                Greeting::Busy => "vm-isonphone",
            }
            .into(),
        );
        files
    }

    /// Keeps the recording as a message with its metadata, or drops one too
    /// short to be a message (a caller who hung up at the beep).
    fn store(&mut self, mailbox: &MailboxId, spool: &Spool) {
        let Some(path) = self.message.take() else {
            return;
        };
        let seconds = std::fs::metadata(&path)
            .map(|m| m.len().saturating_sub(44) as f64 / 16_000.0)
            .unwrap_or(0.0);
        if seconds < self.limits.min_message.as_secs_f64() {
            let _ = std::fs::remove_file(&path);
            tracing::info!(%mailbox, seconds, "message too short: not kept");
            self.status = "FAILED";
            return;
        }
        self.meta.duration = seconds.round() as u64;
        match spool.save_meta(mailbox, &path, &self.meta) {
            Ok(()) => {
                self.saved = true;
                tracing::info!(%mailbox, seconds, file = %path.display(), "voicemail left");
            }
            Err(e) => {
                tracing::error!(%mailbox, error = %e, "cannot write a message's metadata");
                self.status = "FAILED";
            }
        }
    }

    fn done(&mut self, status: &'static str, exit: Option<char>) -> Step {
        self.state = State::Done;
        Step::Done { status, exit }
    }
}

fn play(files: &[&str], cut: &'static str, wait: Duration) -> Step {
    Step::Play {
        files: files.iter().map(|f| f.to_string()).collect(),
        cut,
        wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message: Duration::from_secs(180),
            min_message: Duration::from_secs(1),
            max_silence: Duration::from_secs(5),
            max_messages: 2,
        }
    }

    fn leave(options: &str) -> Leave {
        Leave::new(
            MailboxId::parse("1002"),
            options,
            limits(),
            Meta {
                callerid: "\"Alice\" <1001>".into(),
                exten: "1002".into(),
                context: "internal".into(),
                ..Meta::default()
            },
        )
    }

    /// Writes a WAV file of `seconds` of silence where the machine records.
    fn record(step: &Step, seconds: f64) {
        let Step::Record { path, .. } = step else {
            panic!("expected a recording, got {step:?}");
        };
        let bytes = vec![0u8; 44 + (seconds * 16_000.0) as usize];
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn unavailable_greeting_beep_message_then_saved() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let mut vm = leave("u");
        let Step::Play { files, cut, .. } = vm.on(Event::Start, &spool) else {
            panic!()
        };
        assert_eq!(
            files,
            [
                "vm-theperson",
                "digits/1",
                "digits/0",
                "digits/0",
                "digits/2",
                "vm-isunavail",
                "vm-intro"
            ]
        );
        assert_eq!(cut, "#0*");
        let step = vm.on(Event::Ended, &spool);
        record(&step, 4.0);
        let Step::Play { files, .. } = vm.on(Event::Recorded { hangup: false }, &spool) else {
            panic!()
        };
        assert_eq!(files, ["vm-msgsaved", "goodbye"]);
        assert_eq!(
            vm.on(Event::Ended, &spool),
            Step::Done {
                status: "SUCCESS",
                exit: None
            }
        );
        assert!(vm.saved);
        let inbox = spool.list(
            &MailboxId::parse("1002").unwrap(),
            super::super::spool::INBOX,
        );
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].meta.duration, 4);
        assert_eq!(inbox[0].meta.callerid, "\"Alice\" <1001>");
    }

    #[test]
    fn a_recorded_greeting_replaces_the_default_and_hash_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let id = MailboxId::parse("1002").unwrap();
        std::fs::create_dir_all(spool.dir(&id)).unwrap();
        std::fs::write(spool.dir(&id).join("busy.wav"), b"RIFF").unwrap();
        let mut vm = leave("bs");
        let Step::Play { files, .. } = vm.on(Event::Start, &spool) else {
            panic!()
        };
        assert_eq!(files.len(), 1, "the owner's greeting, no instructions");
        assert!(files[0].ends_with("1002/busy"));
        assert!(matches!(
            vm.on(Event::Digit('#'), &spool),
            Step::Record { .. }
        ));
    }

    #[test]
    fn zero_and_star_leave_for_the_o_and_a_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        for key in ['0', '*'] {
            let mut vm = leave("u");
            vm.on(Event::Start, &spool);
            assert_eq!(
                vm.on(Event::Digit(key), &spool),
                Step::Done {
                    status: "USEREXIT",
                    exit: Some(key)
                }
            );
        }
    }

    #[test]
    fn a_hangup_keeps_the_message_but_one_too_short_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let id = MailboxId::parse("1002").unwrap();
        let mut vm = leave("s");
        vm.on(Event::Start, &spool);
        let step = vm.on(Event::Ended, &spool);
        record(&step, 2.0);
        assert_eq!(
            vm.on(Event::Recorded { hangup: true }, &spool),
            Step::Done {
                status: "SUCCESS",
                exit: None
            }
        );
        assert_eq!(spool.counts(&id), (1, 0));

        let mut vm = leave("s");
        vm.on(Event::Start, &spool);
        let step = vm.on(Event::Ended, &spool);
        record(&step, 0.3);
        assert_eq!(
            vm.on(Event::Recorded { hangup: true }, &spool),
            Step::Done {
                status: "FAILED",
                exit: None
            }
        );
        assert!(!vm.saved);
        assert_eq!(spool.counts(&id), (1, 0));
    }

    #[test]
    fn a_full_mailbox_or_an_unknown_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        for _ in 0..2 {
            let mut vm = leave("s");
            vm.on(Event::Start, &spool);
            let step = vm.on(Event::Ended, &spool);
            record(&step, 2.0);
            vm.on(Event::Recorded { hangup: true }, &spool);
        }
        let mut vm = leave("u");
        let Step::Play { files, .. } = vm.on(Event::Start, &spool) else {
            panic!()
        };
        assert_eq!(files, ["vm-mailboxfull", "goodbye"]);
        assert_eq!(
            vm.on(Event::Ended, &spool),
            Step::Done {
                status: "FAILED",
                exit: None
            }
        );
        let mut unknown = Leave::new(None, "u", limits(), Meta::default());
        assert_eq!(
            unknown.on(Event::Start, &spool),
            Step::Done {
                status: "FAILED",
                exit: None
            }
        );
    }
}
