//! What goes in and out of the interpreter: the call start, the actions handed to the
//! call agent, the inputs it resumes with, and the observable events.

use crate::causes::DialStatus;

/// A new inbound call (§6.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStart {
    pub context: String,
    /// The dialed number; empty means `s`.
    pub exten: String,
    pub caller_id_num: Option<String>,
    pub caller_id_name: Option<String>,
    /// Channel name as `${CHANNEL}` shows it, e.g. `SIP/alice-00000001`.
    pub channel: String,
    pub uniqueid: String,
    /// Channel variables present at the start (e.g. inherited from a parent).
    pub variables: Vec<(String, String)>,
}

/// Why the dialplan stopped running for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `Hangup()`, the caller hung up, or a call ended after an answered Dial.
    Hangup,
    /// `Busy()` or auto-fallthrough with `DIALSTATUS=BUSY`.
    Busy,
    /// `Congestion()` or auto-fallthrough with `DIALSTATUS=CONGESTION/CHANUNAVAIL`.
    Congestion,
    /// Ran out of priorities with autofallthrough (§6.4).
    EndOfDialplan,
    /// The extension does not exist and there is no `i`/`e` (§6.4).
    NoSuchExtension,
    /// An application failed: unknown application, Goto to a missing label, Gosub to
    /// a missing target, malformed Dial, Return without Gosub, ...
    AppError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hangup => "hangup",
            Outcome::Busy => "busy",
            Outcome::Congestion => "congestion",
            Outcome::EndOfDialplan => "end_of_dialplan",
            Outcome::NoSuchExtension => "no_such_extension",
            Outcome::AppError => "app_error",
        }
    }
}

/// The end of the call: tear it down with `cause` (for an unanswered SIP call,
/// `causes::cause_to_sip(cause)` gives the final response). `h` has already run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub outcome: Outcome,
    pub cause: u16,
}

/// One Dial target: `Tech/Resource`, with `PJSIP` folded into `SIP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    pub tech: String,
    pub resource: String,
}

impl std::fmt::Display for DialTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tech, self.resource)
    }
}

/// One Dial option letter and its `(argument)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialOption {
    pub letter: char,
    pub arg: Option<String>,
}

/// Dial's options (§13.1): the common ones decoded, every letter kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialOptions {
    /// The options text exactly as given.
    pub raw: String,
    pub list: Vec<DialOption>,
}

impl DialOptions {
    pub fn has(&self, letter: char) -> bool {
        self.list.iter().any(|o| o.letter == letter)
    }
    pub fn arg(&self, letter: char) -> Option<&str> {
        self.list
            .iter()
            .find(|o| o.letter == letter)
            .and_then(|o| o.arg.as_deref())
    }
    /// `r`: the switch generates ringback while dialing.
    pub fn ringback(&self) -> bool {
        self.has('r')
    }
    /// `t`: the called party may transfer.
    pub fn callee_transfer(&self) -> bool {
        self.has('t')
    }
    /// `T`: the calling party may transfer.
    pub fn caller_transfer(&self) -> bool {
        self.has('T')
    }
    /// `d`: a single digit the caller presses while it rings leaves for that
    /// extension, if it exists.
    pub fn digit_exit(&self) -> bool {
        self.has('d')
    }
    /// `g`: continue the caller's dialplan when the callee hangs up.
    pub fn continue_on_callee_hangup(&self) -> bool {
        self.has('g')
    }
}

/// `Dial(...)` for the call agent.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    /// Called in parallel; the first to answer wins.
    pub targets: Vec<DialTarget>,
    /// Seconds; `None` = no limit.
    pub timeout: Option<f64>,
    /// The `^progress` part of `answer^progress`, seconds.
    pub progress_timeout: Option<f64>,
    /// The timeout argument as given.
    pub timeout_text: String,
    pub options: DialOptions,
    pub url: Option<String>,
}

/// How a Dial ended, reported back by the call agent (§13.2).
#[derive(Debug, Clone, PartialEq)]
pub struct DialResult {
    pub status: DialStatus,
    /// Cause of the last failed leg; becomes the caller's HANGUPCAUSE.
    pub cause: Option<u16>,
    pub peer_number: Option<String>,
    pub peer_name: Option<String>,
    /// Seconds from the start of Dial to its end.
    pub dialed_time: f64,
    /// Seconds the answered call lasted.
    pub answered_time: f64,
    pub ring_time: Option<f64>,
    pub progress_time: Option<f64>,
    /// For `ANSWER`: true when the caller ended the bridged call.
    pub caller_hung_up: bool,
    /// Option `d`: the one-digit extension the caller dialed.
    pub digit: Option<char>,
}

impl DialResult {
    /// A Dial that ended without an answer.
    pub fn failed(status: DialStatus, cause: Option<u16>) -> Self {
        DialResult {
            status,
            cause,
            peer_number: None,
            peer_name: None,
            dialed_time: 0.0,
            answered_time: 0.0,
            ring_time: None,
            progress_time: None,
            caller_hung_up: false,
            digit: None,
        }
    }

    /// An answered Dial whose bridge has ended.
    pub fn answered(peer_number: &str, caller_hung_up: bool) -> Self {
        DialResult {
            peer_number: Some(peer_number.to_string()),
            caller_hung_up,
            ..DialResult::failed(DialStatus::Answer, None)
        }
    }
}

/// Work for the call agent. After doing it, call `Interpreter::resume` with the
/// matching [`Resume`] (or `Resume::CallerHangup` if the caller left meanwhile).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer the call (resume `Done`).
    Answer {
        delay_ms: Option<u64>,
    },
    /// 183 Session Progress (resume `Done`).
    Progress,
    /// 180 Ringing (resume `Done`).
    Ringing,
    /// Sleep (resume `Done`).
    Wait {
        seconds: f64,
    },
    /// Indicate busy, hold it up to `timeout` seconds (resume anything; the call then ends).
    Busy {
        timeout: Option<f64>,
    },
    /// Indicate congestion, like `Busy`.
    Congestion {
        timeout: Option<f64>,
    },
    /// Call the targets (resume `Dial(result)`).
    Dial(DialRequest),
    /// Play files; answer first when `answer` (resume `Played { ok }`).
    Playback {
        files: Vec<String>,
        options: String,
        answer: bool,
    },
    /// Play files, interruptible by a digit that can start an extension in `context`
    /// (resume `Played { ok }` or `Digit(c)`).
    Background {
        files: Vec<String>,
        options: String,
        language: Option<String>,
        context: String,
        answer: bool,
    },
    /// Wait up to `timeout` seconds for a digit (resume `Digit(c)` or `Timeout`).
    WaitExten {
        timeout: f64,
        options: String,
    },
    /// Wait up to `timeout` seconds for the next digit of an extension being
    /// collected (§6.5; resume `Digit(c)` or `Timeout`).
    CollectDigit {
        timeout: f64,
    },
    /// Collect digits into `variable` (resume `Read { digits, status }`).
    Read {
        variable: String,
        files: Vec<String>,
        max_digits: Option<u32>,
        options: String,
        attempts: u32,
        timeout: Option<f64>,
    },
    SayDigits {
        digits: String,
    },
    SayNumber {
        number: String,
        gender: Option<String>,
    },
    /// Echo audio until `#` (resume `Done`) or hangup.
    Echo,
    /// Send DTMF to the caller: each key held `duration_ms`, `gap_ms` between
    /// keys; `w`/`W` wait 0.5 s / 1 s (resume `Done` once sent).
    SendDtmf {
        digits: String,
        gap_ms: u64,
        duration_ms: u64,
    },
    /// Record to `file` (resume `Recorded { status }`).
    Record {
        file: String,
        silence: Option<f64>,
        max_duration: Option<f64>,
        options: String,
    },
    /// Record both directions of the call to `file` in the background until the
    /// call ends or `StopMixMonitor` (resume `Done`).
    MixMonitor {
        file: String,
        options: String,
    },
    /// Stop the recordings MixMonitor started (resume `Done`).
    StopMixMonitor,
    /// Leave a message (resume `VoiceMail { status, exit }`).
    VoiceMail {
        mailboxes: Vec<String>,
        options: String,
    },
    /// Mailbox owner's menu (resume `Done`).
    VoiceMailMain {
        mailbox: Option<String>,
        options: String,
    },
    /// Join a conference (resume `ConfBridge { result }`).
    ConfBridge {
        conference: String,
        bridge_profile: Option<String>,
        user_profile: Option<String>,
        menu: Option<String>,
    },
    /// Answer a call ringing one of `targets` (`1002`, `1002@context`,
    /// `PJSIP/1002`) and talk to its caller (resume `Done` when nothing rang, or
    /// the call ends once the picked-up caller hangs up).
    Pickup {
        targets: Vec<String>,
    },
    /// The dialplan is finished (the `h` extension has run). Tear the call down.
    Hangup(Ending),
}

/// Input to `Interpreter::resume`.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The first call.
    Start,
    /// The action completed normally.
    Done,
    /// The caller hung up while the action ran.
    CallerHangup,
    /// The action failed in a way that ends the call (e.g. a mailbox that does not exist).
    AppFailed,
    /// A DTMF digit.
    Digit(char),
    /// No digit arrived in time.
    Timeout,
    /// Playback/Background finished (`ok` false when a file was missing).
    Played {
        ok: bool,
    },
    Dial(DialResult),
    /// Read finished: the digits and `READSTATUS` (`OK`, `TIMEOUT`, `HANGUP`, ...).
    Read {
        digits: String,
        status: String,
    },
    /// Record finished with `RECORD_STATUS`; `file` is the name recorded to when it
    /// differs from the one asked for (a `%d` filled in).
    Recorded {
        status: String,
        file: Option<String>,
    },
    /// VoiceMail finished with `VMSTATUS`; `exit` is `0` or `*` when the caller left
    /// the greeting with that key (§7: jump to `o` / `a`).
    VoiceMail {
        status: String,
        exit: Option<char>,
    },
    /// ConfBridge finished with `CONFBRIDGE_RESULT`.
    ConfBridge {
        result: String,
    },
    /// The absolute timeout (`TIMEOUT(absolute)`) fired (§6.6).
    AbsoluteTimeout,
}

/// One executed priority, as Asterisk logs `Executing [exten@context:priority]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The context the search began in (§5.3), not the included one.
    pub context: String,
    pub exten: String,
    pub priority: i32,
    /// Canonical spelling (`BackGround`, `NoOp`, ...).
    pub app: String,
    /// Data after substitution, exactly as the application receives it.
    pub args: String,
}

/// Observable things that happened while running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Step(Step),
    /// Verbose()/Log() output.
    Log {
        level: String,
        message: String,
    },
    /// What Asterisk would log as a warning (unknown function, bad Goto, ...).
    Warning(String),
}
