//! Q.850 hangup causes, their SIP mappings and `DIALSTATUS` (§13.2, §14).

/// Causes Asterisk names (§14.1), accepted by `Hangup(NAME)`.
const CAUSES: &[(u16, &str)] = &[
    (1, "UNALLOCATED"),
    (2, "NO_ROUTE_TRANSIT_NET"),
    (3, "NO_ROUTE_DESTINATION"),
    (5, "MISDIALLED_TRUNK_PREFIX"),
    (6, "CHANNEL_UNACCEPTABLE"),
    (7, "CALL_AWARDED_DELIVERED"),
    (8, "PRE_EMPTED"),
    (14, "NUMBER_PORTED_NOT_HERE"),
    (16, "NORMAL_CLEARING"),
    (17, "USER_BUSY"),
    (18, "NO_USER_RESPONSE"),
    (19, "NO_ANSWER"),
    (20, "SUBSCRIBER_ABSENT"),
    (21, "CALL_REJECTED"),
    (22, "NUMBER_CHANGED"),
    (23, "REDIRECTED_TO_NEW_DESTINATION"),
    (26, "ANSWERED_ELSEWHERE"),
    (27, "DESTINATION_OUT_OF_ORDER"),
    (28, "INVALID_NUMBER_FORMAT"),
    (29, "FACILITY_REJECTED"),
    (30, "RESPONSE_TO_STATUS_ENQUIRY"),
    (31, "NORMAL_UNSPECIFIED"),
    (34, "NORMAL_CIRCUIT_CONGESTION"),
    (38, "NETWORK_OUT_OF_ORDER"),
    (41, "NORMAL_TEMPORARY_FAILURE"),
    (42, "SWITCH_CONGESTION"),
    (43, "ACCESS_INFO_DISCARDED"),
    (44, "REQUESTED_CHAN_UNAVAIL"),
    (50, "FACILITY_NOT_SUBSCRIBED"),
    (52, "OUTGOING_CALL_BARRED"),
    (54, "INCOMING_CALL_BARRED"),
    (57, "BEARERCAPABILITY_NOTAUTH"),
    (58, "BEARERCAPABILITY_NOTAVAIL"),
    (65, "BEARERCAPABILITY_NOTIMPL"),
    (66, "CHAN_NOT_IMPLEMENTED"),
    (69, "FACILITY_NOT_IMPLEMENTED"),
    (81, "INVALID_CALL_REFERENCE"),
    (88, "INCOMPATIBLE_DESTINATION"),
    (95, "INVALID_MSG_UNSPECIFIED"),
    (96, "MANDATORY_IE_MISSING"),
    (97, "MESSAGE_TYPE_NONEXIST"),
    (98, "WRONG_MESSAGE"),
    (99, "IE_NONEXIST"),
    (100, "INVALID_IE_CONTENTS"),
    (101, "WRONG_CALL_STATE"),
    (102, "RECOVERY_ON_TIMER_EXPIRE"),
    (103, "MANDATORY_IE_LENGTH_ERROR"),
    (111, "PROTOCOL_ERROR"),
    (127, "INTERWORKING"),
];

pub const NORMAL_CLEARING: u16 = 16;
pub const USER_BUSY: u16 = 17;
pub const CONGESTION: u16 = 34;
pub const UNALLOCATED: u16 = 1;

/// The Asterisk name of a cause, if it has one.
pub fn cause_name(cause: u16) -> Option<&'static str> {
    CAUSES.iter().find(|(c, _)| *c == cause).map(|(_, n)| *n)
}

/// Parses `Hangup()`'s argument: a number, or text that starts with a cause name
/// (case-insensitive, `main/channel.c` `ast_str2cause()`). `None` for anything else.
pub fn parse_cause(text: &str) -> Option<u16> {
    let t = text.trim();
    if let Some(n) = leading_number(t) {
        return (n > 0).then_some(n);
    }
    CAUSES
        .iter()
        .find(|(_, name)| {
            t.len() >= name.len()
                && t.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
        .map(|(c, _)| *c)
}

fn leading_number(t: &str) -> Option<u16> {
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    Some(
        digits
            .parse::<u32>()
            .map(|v| v.min(u16::MAX as u32) as u16)
            .unwrap_or(0),
    )
}

/// SIP final response for hanging up an *unanswered* inbound call with `cause`
/// (§14.2, chan_pjsip `hangup_cause2sip()`).
pub fn cause_to_sip(cause: u16) -> (u16, &'static str) {
    match cause {
        1..=3 => (404, "Not Found"),
        17 => (486, "Busy Here"),
        18 => (408, "Request Timeout"),
        19 | 20 | 31 => (480, "Temporarily Unavailable"),
        21 => (403, "Forbidden"),
        22 => (410, "Gone"),
        23 => (302, "Moved Temporarily"),
        27 => (502, "Bad Gateway"),
        28 => (484, "Address Incomplete"),
        29 => (501, "Not Implemented"),
        34 | 42 | 66 => (503, "Service Unavailable"),
        38 | 127 => (500, "Server Internal Error"),
        58 => (488, "Not Acceptable Here"),
        _ => (603, "Decline"),
    }
}

/// Cause for a failed outgoing leg that got SIP final response `code` (§14.3,
/// res_pjsip `ast_sip_hangup_sip2cause()`).
pub fn sip_to_cause(code: u16) -> u16 {
    match code {
        302 => 23,
        401 | 403 | 407 | 603 => 21,
        404 | 485 | 604 => 1,
        405 | 411 | 413 | 414 | 415 | 481 | 482 | 487 | 491 | 493 | 505 => 127,
        408 => 18,
        409 => 41,
        410 => 22,
        420 => 3,
        480 | 483 => 19,
        484 => 28,
        486 | 600 => 17,
        488 | 606 => 58,
        500 => 38,
        501 => 29,
        502 => 27,
        503 => 34,
        504 => 102,
        c if (400..500).contains(&c) => 127,
        c if (500..600).contains(&c) => 34,
        c if (600..700).contains(&c) => 127,
        _ => 16,
    }
}

/// Values of `DIALSTATUS` (§13.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DialStatus {
    Answer,
    NoAnswer,
    Busy,
    Congestion,
    ChanUnavail,
    Cancel,
    DontCall,
    Torture,
    InvalidArgs,
}

impl DialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DialStatus::Answer => "ANSWER",
            DialStatus::NoAnswer => "NOANSWER",
            DialStatus::Busy => "BUSY",
            DialStatus::Congestion => "CONGESTION",
            DialStatus::ChanUnavail => "CHANUNAVAIL",
            DialStatus::Cancel => "CANCEL",
            DialStatus::DontCall => "DONTCALL",
            DialStatus::Torture => "TORTURE",
            DialStatus::InvalidArgs => "INVALIDARGS",
        }
    }

    /// Parses a status name, case-insensitively.
    pub fn parse(s: &str) -> Option<DialStatus> {
        let all = [
            DialStatus::Answer,
            DialStatus::NoAnswer,
            DialStatus::Busy,
            DialStatus::Congestion,
            DialStatus::ChanUnavail,
            DialStatus::Cancel,
            DialStatus::DontCall,
            DialStatus::Torture,
            DialStatus::InvalidArgs,
        ];
        all.into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// A representative cause for a status, used when no leg cause is known
    /// (the dry-run trace).
    pub fn typical_cause(self) -> Option<u16> {
        match self {
            DialStatus::Busy => Some(USER_BUSY),
            DialStatus::Congestion => Some(CONGESTION),
            DialStatus::ChanUnavail => Some(20),
            DialStatus::NoAnswer => Some(19),
            _ => None,
        }
    }
}

impl std::fmt::Display for DialStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// app_dial's counting rule when every leg failed (§13.2): any busy leg makes `BUSY`;
/// else any congestion `CONGESTION`; else any leg with a cause other than 16/19 makes
/// `CHANUNAVAIL`; legs ending "normally" (16, 19) give `NOANSWER`. No legs at all is
/// `CHANUNAVAIL`.
pub fn dial_status_for_failed_legs(causes: &[u16]) -> DialStatus {
    if causes.is_empty() {
        return DialStatus::ChanUnavail;
    }
    if causes.contains(&USER_BUSY) {
        DialStatus::Busy
    } else if causes.contains(&CONGESTION) {
        DialStatus::Congestion
    } else if causes.iter().any(|c| *c == 16 || *c == 19) {
        DialStatus::NoAnswer
    } else {
        DialStatus::ChanUnavail
    }
}

/// `DIALSTATUS` for a single leg that failed with SIP response `code`.
pub fn sip_to_dial_status(code: u16) -> DialStatus {
    dial_status_for_failed_legs(&[sip_to_cause(code)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_parsing() {
        assert_eq!(parse_cause("21"), Some(21));
        assert_eq!(parse_cause("USER_BUSY"), Some(17));
        assert_eq!(parse_cause("call_rejected"), Some(21));
        assert_eq!(parse_cause("NORMAL_CLEARING_EXTRA"), Some(16));
        assert_eq!(parse_cause("bogus"), None);
        assert_eq!(parse_cause("0"), None);
        assert_eq!(parse_cause(""), None);
    }

    #[test]
    fn sip_tables() {
        assert_eq!(cause_to_sip(16).0, 603);
        assert_eq!(cause_to_sip(17).0, 486);
        assert_eq!(cause_to_sip(34).0, 503);
        assert_eq!(cause_to_sip(1).0, 404);
        assert_eq!(sip_to_cause(486), 17);
        assert_eq!(sip_to_cause(599), 34);
        assert_eq!(sip_to_cause(499), 127);
        assert_eq!(sip_to_dial_status(480), DialStatus::NoAnswer);
        assert_eq!(sip_to_dial_status(503), DialStatus::Congestion);
        assert_eq!(sip_to_dial_status(404), DialStatus::ChanUnavail);
        assert_eq!(sip_to_dial_status(600), DialStatus::Busy);
        assert_eq!(dial_status_for_failed_legs(&[34, 17]), DialStatus::Busy);
    }
}
