//! Applications this crate knows, in Asterisk's canonical spelling. Application names
//! are case-insensitive in the dialplan (§16 point 8); traces print the canonical form.

/// Applications the interpreter runs itself.
pub const INTERNAL: &[&str] = &[
    "Goto",
    "GotoIf",
    "GotoIfTime",
    "Gosub",
    "GosubIf",
    "Return",
    "StackPop",
    "Set",
    "MSet",
    "ExecIf",
    "ExecIfTime",
    "While",
    "EndWhile",
    "ExitWhile",
    "ContinueWhile",
    "NoOp",
    "Verbose",
    "Log",
    "RaiseException",
    "Hangup",
];

/// Applications handed to the call agent as an `Action`.
pub const EXTERNAL: &[&str] = &[
    "Answer",
    "Busy",
    "Congestion",
    "Progress",
    "Ringing",
    "Wait",
    "Dial",
    "Playback",
    "BackGround",
    "WaitExten",
    "Read",
    "SayDigits",
    "SayNumber",
    "Echo",
    "SendDTMF",
    "Record",
    "MixMonitor",
    "StopMixMonitor",
    "VoiceMail",
    "VoiceMailMain",
    "ConfBridge",
    "Pickup",
];

/// The canonical spelling of `name`, or `None` if no such application exists here.
pub fn canonical_app(name: &str) -> Option<&'static str> {
    INTERNAL
        .iter()
        .chain(EXTERNAL)
        .find(|a| a.eq_ignore_ascii_case(name))
        .copied()
}

/// Dialplan functions this crate implements (names are case-sensitive, §8.2).
pub const FUNCTIONS: &[&str] = &[
    "CALLERID",
    "LEN",
    "IF",
    "IFTIME",
    "ISNULL",
    "EXISTS",
    "CUT",
    "REGEX",
    "STRFTIME",
    "RAND",
    "SET",
    "GLOBAL",
    "DB",
    "DB_EXISTS",
    "DB_DELETE",
    "EXCEPTION",
    "LOCAL",
    "TIMEOUT",
    "CHANNEL",
    "TOUPPER",
    "TOLOWER",
    "DEVICE_STATE",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spelling() {
        assert_eq!(canonical_app("background"), Some("BackGround"));
        assert_eq!(canonical_app("NOOP"), Some("NoOp"));
        assert_eq!(canonical_app("Dail"), None);
        assert!(is_function("CALLERID"));
        assert!(!is_function("len"));
    }
}
