//! Voicemail: mailboxes in a spool directory, the two dialplan applications
//! (`VoiceMail` to leave a message, `VoiceMailMain` for the owner's menu) as
//! sans-IO state machines, and message-waiting indication (RFC 3842).
//!
//! - [`spool`] keeps messages as Asterisk does (`context/mailbox/INBOX/msg0000.wav`
//!   with a `.txt` of metadata), so an Asterisk admin finds them where expected
//!   and existing spools carry over.
//! - [`leave`] and [`menu`] decide what the caller hears and what happens to the
//!   messages; the call agent plays, records and collects digits for them.
//! - [`mwi`] builds `message-summary` bodies and keeps the phones' subscriptions.

pub mod leave;
pub mod menu;
pub mod mwi;
pub mod spool;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use spool::Spool;

/// What the call agent is to do next for a voicemail application.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Play `files` to the caller (none: just wait); a digit in `cut` stops them and
    /// is reported as [`Event::Digit`]. After they end, wait `wait` for a digit
    /// before [`Event::Ended`].
    Play {
        files: Vec<String>,
        cut: &'static str,
        wait: Duration,
    },
    /// A beep, then record the caller into `path` until `#`, `silence` of silence,
    /// `max`, or a hangup (which keeps the recording); then [`Event::Recorded`].
    Record {
        path: PathBuf,
        max: Duration,
        silence: Duration,
    },
    /// Go on with the step in progress (the event changed nothing).
    Continue,
    /// The application is over; `status` is VMSTATUS (VoiceMail) and `exit` the key
    /// that left it for the `o` or `a` extension.
    Done {
        status: &'static str,
        exit: Option<char>,
    },
}

/// What happened since the last [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    /// The prompt played out and the wait after it passed without a digit.
    Ended,
    Digit(char),
    /// The recording ended; `hangup` when the caller hung up.
    Recorded {
        hangup: bool,
    },
}

/// Every digit: the cut set of a prompt that any key interrupts.
pub const ANY_KEY: &str = "0123456789*#";

/// A count as prompts: "digits/1", "digits/2" for 12 (the shipped sounds hold
/// digits, not number words).
pub fn say_count(n: usize) -> Vec<String> {
    n.to_string()
        .chars()
        .map(|d| format!("digits/{d}"))
        .collect()
}

/// A mailbox: number and voicemail context (`1001@default`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId {
    pub number: String,
    pub context: String,
}

impl MailboxId {
    /// `1001` (context `default`) or `1001@sales`; None for anything that is not a
    /// safe directory name.
    pub fn parse(s: &str) -> Option<MailboxId> {
        let (number, context) = match s.trim().split_once('@') {
            Some((n, c)) => (n, c),
            None => (s.trim(), "default"),
        };
        let safe = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        (safe(number) && safe(context)).then(|| MailboxId {
            number: number.to_string(),
            context: context.to_string(),
        })
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.number, self.context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_ids_default_their_context_and_refuse_paths() {
        let id = MailboxId::parse("1001").unwrap();
        assert_eq!(id.to_string(), "1001@default");
        assert_eq!(MailboxId::parse("22@sales").unwrap().context, "sales");
        for bad in ["", "../x", "1001@..", "a/b", "1001@", "@x"] {
            assert_eq!(MailboxId::parse(bad), None, "{bad}");
        }
    }
}
