//! `VoiceMailMain([mailbox@context],options)`: the owner logs in, hears how many
//! messages wait, and listens to them: `5` repeats, `6` skips to the next, `4`
//! goes back, `7` deletes, `#` leaves (the keys of Asterisk's menu). A message
//! listened to moves from `INBOX` to `Old`. Sans-IO like [`super::leave`].

use std::time::Duration;

use super::spool::{INBOX, Message, OLD, Spool};
use super::{ANY_KEY, Event, MailboxId, Step, say_count};

/// How long a menu waits for a key before it repeats.
const MENU_WAIT: Duration = Duration::from_secs(8);
/// How long the login waits for the next digit.
const DIGIT_WAIT: Duration = Duration::from_secs(5);
/// Wrong logins before the caller is sent away.
const MAX_TRIES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AskMailbox,
    AskPin,
    Incorrect,
    Summary,
    MainMenu {
        repeats: u32,
    },
    Playing,
    MessageMenu {
        repeats: u32,
    },
    /// A prompt (deleted, no more) before the next state.
    Then(Box<State>),
    Goodbye,
    Done,
}

#[derive(Debug)]
pub struct Menu {
    /// Mailbox and PIN as configured, once known; looked up with `lookup`.
    mailbox: Option<MailboxId>,
    pin: Option<String>,
    skip_pin: bool,
    state: State,
    digits: String,
    tries: u32,
    messages: Vec<Message>,
    at: usize,
    /// Messages changed (listened to, deleted): the phones are to be told.
    pub changed: bool,
}

/// Finds a configured mailbox's PIN by id.
pub type Lookup<'a> = &'a dyn Fn(&MailboxId) -> Option<String>;

impl Menu {
    /// `mailbox` as the dialplan gave it (None: ask); `options` are
    /// VoiceMailMain's (`s`: no PIN).
    pub fn new(mailbox: Option<&str>, options: &str) -> Menu {
        Menu {
            mailbox: mailbox.and_then(MailboxId::parse),
            pin: None,
            skip_pin: options.contains('s'),
            state: State::AskMailbox,
            digits: String::new(),
            tries: 0,
            messages: Vec::new(),
            at: 0,
            changed: false,
        }
    }

    pub fn mailbox(&self) -> Option<&MailboxId> {
        self.mailbox.as_ref()
    }

    pub fn on(&mut self, event: Event, spool: &Spool, lookup: Lookup<'_>) -> Step {
        match (self.state.clone(), event) {
            (State::AskMailbox, Event::Start) => match self.mailbox.clone() {
                Some(id) => match lookup(&id) {
                    Some(pin) => self.logged_in_or_ask_pin(id, pin, spool),
                    None => {
                        tracing::warn!(mailbox = %id, "VoiceMailMain: no such mailbox");
                        self.state = State::Done;
                        Step::Done {
                            status: "FAILED",
                            exit: None,
                        }
                    }
                },
                None => self.ask("vm-login", State::AskMailbox),
            },
            (State::AskMailbox | State::AskPin, Event::Digit(d)) if d != '#' => {
                self.digits.push(d);
                Step::Play {
                    files: Vec::new(),
                    cut: ANY_KEY,
                    wait: DIGIT_WAIT,
                }
            }
            (State::AskMailbox, Event::Digit(_) | Event::Ended) => {
                let entered = std::mem::take(&mut self.digits);
                self.mailbox = MailboxId::parse(&entered);
                if entered.is_empty() {
                    return self.failed_try(spool);
                }
                self.pin = self.mailbox.as_ref().and_then(lookup);
                // Ask for the PIN even for an unknown box, so a caller cannot probe
                // which mailboxes exist.
                self.ask("vm-password", State::AskPin)
            }
            (State::AskPin, Event::Digit(_) | Event::Ended) => {
                let entered = std::mem::take(&mut self.digits);
                match (&self.mailbox, &self.pin) {
                    (Some(id), Some(pin)) if *pin == entered => {
                        tracing::info!(mailbox = %id, "voicemail login");
                        self.summary(spool)
                    }
                    _ => self.failed_try(spool),
                }
            }
            (State::Incorrect, Event::Ended) => {
                if self.mailbox.is_some() && self.pin.is_some() && self.tries < MAX_TRIES {
                    self.ask("vm-password", State::AskPin)
                } else {
                    self.mailbox = None;
                    self.ask("vm-login", State::AskMailbox)
                }
            }
            (State::Summary, Event::Ended | Event::Digit(_)) => self.main_menu(0),
            (State::MainMenu { .. }, Event::Digit('1')) => {
                self.load(spool);
                self.at = 0;
                self.play_current(spool)
            }
            (State::MainMenu { .. }, Event::Digit('#' | '*')) => self.goodbye(),
            (State::MainMenu { repeats }, Event::Ended) => {
                if repeats + 1 >= MAX_TRIES {
                    self.goodbye()
                } else {
                    self.main_menu(repeats + 1)
                }
            }
            (State::Playing, Event::Ended) => {
                self.state = State::MessageMenu { repeats: 0 };
                play(&["vm-msgmenu"], "4567#", MENU_WAIT)
            }
            (State::Playing | State::MessageMenu { .. }, Event::Digit(k)) => match k {
                '5' => self.play_current(spool),
                '6' => {
                    self.at += 1;
                    self.play_current(spool)
                }
                '4' => {
                    self.at = self.at.saturating_sub(1);
                    self.play_current(spool)
                }
                '7' => self.delete_current(spool),
                '#' => self.goodbye(),
                _ => Step::Continue,
            },
            (State::MessageMenu { repeats }, Event::Ended) => {
                if repeats + 1 >= MAX_TRIES {
                    self.goodbye()
                } else {
                    self.state = State::MessageMenu {
                        repeats: repeats + 1,
                    };
                    play(&["vm-msgmenu"], "4567#", MENU_WAIT)
                }
            }
            (State::Then(next), Event::Ended) => match *next {
                State::Playing => self.play_current(spool),
                State::MainMenu { .. } => self.main_menu(0),
                other => {
                    self.state = other;
                    Step::Continue
                }
            },
            (State::Goodbye, Event::Ended) => {
                self.state = State::Done;
                Step::Done {
                    status: "SUCCESS",
                    exit: None,
                }
            }
            _ => Step::Continue,
        }
    }

    fn logged_in_or_ask_pin(&mut self, id: MailboxId, pin: String, spool: &Spool) -> Step {
        self.mailbox = Some(id);
        let open = pin.is_empty() || self.skip_pin;
        self.pin = Some(pin);
        if open {
            self.summary(spool)
        } else {
            self.ask("vm-password", State::AskPin)
        }
    }

    fn ask(&mut self, prompt: &str, state: State) -> Step {
        self.state = state;
        self.digits.clear();
        play(&[prompt], ANY_KEY, DIGIT_WAIT)
    }

    fn failed_try(&mut self, _spool: &Spool) -> Step {
        self.tries += 1;
        if self.tries >= MAX_TRIES {
            tracing::warn!(mailbox = ?self.mailbox.as_ref().map(|m| m.to_string()), "voicemail login failed");
            return self.goodbye();
        }
        self.state = State::Incorrect;
        play(&["vm-incorrect"], "", Duration::ZERO)
    }

    fn summary(&mut self, spool: &Spool) -> Step {
        self.load(spool);
        let new = self.messages.iter().filter(|m| m.folder == INBOX).count();
        let old = self.messages.len() - new;
        self.state = State::Summary;
        let mut files = Vec::new();
        if new + old == 0 {
            files.push("vm-nomessages".to_string());
        } else {
            files.push("vm-youhave".into());
            files.extend(say_count(new));
            files.push("vm-newmessages".into());
            if old > 0 {
                files.push("vm-and".into());
                files.extend(say_count(old));
                files.push("vm-oldmessages".into());
            }
        }
        Step::Play {
            files,
            cut: ANY_KEY,
            wait: Duration::ZERO,
        }
    }

    fn main_menu(&mut self, repeats: u32) -> Step {
        self.state = State::MainMenu { repeats };
        play(&["vm-mainmenu"], "1#*", MENU_WAIT)
    }

    /// New messages first, then old ones, each oldest first.
    fn load(&mut self, spool: &Spool) {
        let Some(id) = &self.mailbox else {
            return;
        };
        self.messages = spool.list(id, INBOX);
        self.messages.extend(spool.list(id, OLD));
    }

    fn play_current(&mut self, spool: &Spool) -> Step {
        let Some(msg) = self.messages.get(self.at).cloned() else {
            self.state = State::Then(Box::new(State::MainMenu { repeats: 0 }));
            return play(&["vm-nomore"], "", Duration::ZERO);
        };
        // Heard is heard: it moves to Old as it starts playing, as Asterisk does.
        if msg.folder == INBOX
            && let Some(id) = &self.mailbox
        {
            match spool.mark_old(id, &msg) {
                Ok(moved) => {
                    self.messages[self.at] = moved;
                    self.changed = true;
                }
                Err(e) => tracing::warn!(mailbox = %id, error = %e, "cannot move a message to Old"),
            }
        }
        self.state = State::Playing;
        let mut files = vec![
            if self.at == 0 {
                "vm-first"
            } else {
                "vm-message"
            }
            .to_string(),
        ];
        if self.at > 0 {
            files.extend(say_count(self.at + 1));
        }
        files.push(self.messages[self.at].playable());
        Step::Play {
            files,
            cut: "4567#",
            wait: Duration::ZERO,
        }
    }

    fn delete_current(&mut self, spool: &Spool) -> Step {
        if self.at < self.messages.len()
            && let Some(id) = &self.mailbox
        {
            let msg = self.messages.remove(self.at);
            match spool.delete(id, &msg) {
                Ok(()) => self.changed = true,
                Err(e) => tracing::warn!(error = %e, "cannot delete a message"),
            }
        }
        self.state = State::Then(Box::new(State::Playing));
        play(&["vm-deleted"], "", Duration::ZERO)
    }

    fn goodbye(&mut self) -> Step {
        self.state = State::Goodbye;
        play(&["goodbye"], "", Duration::ZERO)
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
    use super::super::spool::Meta;
    use super::*;

    fn spool_with(dir: &std::path::Path, new: usize) -> Spool {
        let spool = Spool::new(dir);
        let id = MailboxId::parse("1001").unwrap();
        for n in 0..new {
            let path = spool.next_message(&id).unwrap();
            std::fs::write(&path, b"RIFF").unwrap();
            let meta = Meta {
                callerid: format!("<100{n}>"),
                ..Meta::default()
            };
            spool.save_meta(&id, &path, &meta).unwrap();
        }
        spool
    }

    fn pins(id: &MailboxId) -> Option<String> {
        (id.to_string() == "1001@default").then(|| "1234".to_string())
    }

    fn files(step: &Step) -> Vec<String> {
        match step {
            Step::Play { files, .. } => files.clone(),
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    fn keys(menu: &mut Menu, spool: &Spool, keys: &str) -> Step {
        let mut last = Step::Continue;
        for k in keys.chars() {
            last = menu.on(Event::Digit(k), spool, &pins);
        }
        last
    }

    #[test]
    fn login_hear_the_count_listen_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_with(dir.path(), 2);
        let id = MailboxId::parse("1001").unwrap();
        let mut menu = Menu::new(None, "");
        assert_eq!(files(&menu.on(Event::Start, &spool, &pins)), ["vm-login"]);
        assert_eq!(files(&keys(&mut menu, &spool, "1001#")), ["vm-password"]);
        let summary = keys(&mut menu, &spool, "1234#");
        assert_eq!(
            files(&summary),
            ["vm-youhave", "digits/2", "vm-newmessages"]
        );
        assert_eq!(
            files(&menu.on(Event::Ended, &spool, &pins)),
            ["vm-mainmenu"]
        );
        let first = keys(&mut menu, &spool, "1");
        let played = files(&first);
        assert_eq!(played[0], "vm-first");
        assert!(played[1].ends_with("1001/Old/msg0000"), "{played:?}");
        assert!(menu.changed);
        assert_eq!(spool.counts(&id), (1, 1), "heard: moved to Old");
        assert_eq!(files(&menu.on(Event::Ended, &spool, &pins)), ["vm-msgmenu"]);
        // 7 deletes it; the next one plays after "deleted".
        assert_eq!(files(&keys(&mut menu, &spool, "7")), ["vm-deleted"]);
        assert_eq!(spool.counts(&id), (1, 0));
        let second = files(&menu.on(Event::Ended, &spool, &pins));
        assert_eq!(second[0], "vm-first", "the deleted one's place");
        assert_eq!(spool.counts(&id), (0, 1));
        // 6 past the last: no more messages, back to the main menu; # leaves.
        assert_eq!(files(&keys(&mut menu, &spool, "6")), ["vm-nomore"]);
        assert_eq!(
            files(&menu.on(Event::Ended, &spool, &pins)),
            ["vm-mainmenu"]
        );
        assert_eq!(files(&keys(&mut menu, &spool, "#")), ["goodbye"]);
        assert_eq!(
            menu.on(Event::Ended, &spool, &pins),
            Step::Done {
                status: "SUCCESS",
                exit: None
            }
        );
    }

    #[test]
    fn a_wrong_pin_is_refused_and_three_send_the_caller_away() {
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_with(dir.path(), 1);
        let mut menu = Menu::new(Some("1001@default"), "");
        assert_eq!(
            files(&menu.on(Event::Start, &spool, &pins)),
            ["vm-password"]
        );
        for _ in 0..2 {
            assert_eq!(files(&keys(&mut menu, &spool, "9999#")), ["vm-incorrect"]);
            assert_eq!(
                files(&menu.on(Event::Ended, &spool, &pins)),
                ["vm-password"]
            );
        }
        assert_eq!(files(&keys(&mut menu, &spool, "9999#")), ["goodbye"]);
        assert_eq!(spool.counts(&MailboxId::parse("1001").unwrap()), (1, 0));
    }

    #[test]
    fn option_s_skips_the_pin_and_an_empty_box_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_with(dir.path(), 0);
        let mut menu = Menu::new(Some("1001"), "s");
        assert_eq!(
            files(&menu.on(Event::Start, &spool, &pins)),
            ["vm-nomessages"]
        );
        let mut unknown = Menu::new(Some("4711"), "s");
        assert_eq!(
            unknown.on(Event::Start, &spool, &pins),
            Step::Done {
                status: "FAILED",
                exit: None
            }
        );
    }
}
