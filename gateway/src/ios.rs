//! Cisco IOS configuration text → `[[dial_peer]]` TOML, for
//! `softswitch gateway import-ios FILE` (gateway reference §A.11).
//!
//! Only VoIP dial peers become TOML. Everything the switch cannot honour is
//! reported rather than dropped silently: an error for what would route calls
//! wrongly (a bad pattern, an unsupported session target), a warning for what
//! changes meaning (H.323 turned into SIP, per-peer settings kept only as
//! comments, peers that are skipped), and an "ignored" line for each top-level
//! command outside dial peers. A peer with an error in its block is left out of
//! the TOML, so a file with errors never yields a half-right peer.
//!
//! The input is read the way IOS prints it: a command at column 1 opens a
//! block, indented lines (spaces or tabs) belong to it, and a `!` closes it.
//! Keywords are matched without regard to case; abbreviations (`dest`, `sess
//! targ`) are not expanded, as `show running-config` never prints them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::pattern::Pattern;

/// How much a diagnostic matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration cannot be imported as written.
    Error,
    /// Imported, but with a different meaning, or skipped on purpose.
    Warning,
    /// A command outside dial peers, not imported.
    Ignored,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Ignored => "ignored",
        })
    }
}

/// One finding about one line of the IOS text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column in characters (a tab counts as one, as in rustc), or 0
    /// when the finding is about the whole line.
    pub col: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    /// `file:line:col: severity: message`, or `file:line: severity: message`
    /// when the column is 0.
    pub fn render(&self, file: &str) -> String {
        if self.col == 0 {
            format!("{file}:{}: {}: {}", self.line, self.severity, self.message)
        } else {
            format!(
                "{file}:{}:{}: {}: {}",
                self.line, self.col, self.severity, self.message
            )
        }
    }
}

/// The result of an import: the TOML (always produced, even with errors, so
/// the user can see what would be kept) and what was found on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub toml: String,
    /// Sorted by line, then column.
    pub diagnostics: Vec<Diagnostic>,
    /// `[[dial_peer]]` tables in `toml`.
    pub peers: usize,
}

impl Import {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Converts IOS configuration text into `[[dial_peer]]` tables.
pub fn import_ios(text: &str) -> Import {
    let mut imp = Importer::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut state = State::Top;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        // Blank lines neither open nor close a block: pasted configs often have
        // them between a dial-peer line and its sub-commands.
        if trimmed.is_empty() {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if trimmed.starts_with('!') {
            // Some IOS blocks print an indented `!` between their own sub-blocks;
            // only a dial peer's block must end there, since its lines matter.
            if !(indented && state == State::Swallow) {
                state = State::Top;
            }
            continue;
        }
        let toks = tokenize(line);
        state = if !indented {
            imp.top_line(line_no, trimmed, &toks)
        } else {
            match state {
                State::Peer(tag) => {
                    imp.peer_line(tag, line_no, trimmed, &toks);
                    state
                }
                State::Swallow => state,
                State::Top => {
                    // Orphaned sub-lines (after a `!` that closed their block):
                    // report the first, and treat the rest as its block.
                    imp.diags.ignored(line_no, trimmed);
                    State::Swallow
                }
            }
        };
    }
    imp.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between blocks.
    Top,
    /// Inside `dial-peer voice TAG voip`.
    Peer(u32),
    /// Inside a block that is not imported; its sub-lines are not reported one
    /// by one.
    Swallow,
}

/// A whitespace-separated word of a line and where it starts.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    /// 1-based character column.
    col: usize,
}

impl Tok<'_> {
    fn is(&self, keyword: &str) -> bool {
        self.text.eq_ignore_ascii_case(keyword)
    }

    /// The column just past this word.
    fn end(&self) -> usize {
        self.col + self.text.chars().count()
    }

    /// The column of the character at byte `offset` of this word.
    fn col_at(&self, offset: usize) -> usize {
        self.col + self.text[..offset].chars().count()
    }
}

fn tokenize(line: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (col0, (byte, c)) in line.char_indices().enumerate() {
        if c.is_whitespace() {
            if let Some((b, col)) = start.take() {
                out.push(Tok {
                    text: &line[b..byte],
                    col,
                });
            }
        } else if start.is_none() {
            start = Some((byte, col0 + 1));
        }
    }
    if let Some((b, col)) = start {
        out.push(Tok {
            text: &line[b..],
            col,
        });
    }
    out
}

#[derive(Debug, Default)]
struct Diags(Vec<Diagnostic>);

impl Diags {
    fn push(&mut self, line: usize, col: usize, severity: Severity, message: String) {
        self.0.push(Diagnostic {
            line,
            col,
            severity,
            message,
        });
    }

    fn error(&mut self, line: usize, col: usize, message: String) {
        self.push(line, col, Severity::Error, message);
    }

    fn warn(&mut self, line: usize, col: usize, message: String) {
        self.push(line, col, Severity::Warning, message);
    }

    fn ignored(&mut self, line: usize, command: &str) {
        self.push(line, 0, Severity::Ignored, command.to_string());
    }
}

/// A sub-command that cannot be imported; it marks its peer as broken.
#[derive(Debug)]
struct Fail {
    col: usize,
    message: String,
}

fn fail<T>(col: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        col,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ForwardDigits {
    Last(u8),
    All,
    Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Keepalive {
    interval: Option<u32>,
    down_interval: Option<u32>,
    fall: Option<u32>,
}

#[derive(Debug)]
struct Peer {
    tag: u32,
    /// Where the peer was first opened; peer-wide findings point here.
    line: usize,
    pattern: Option<String>,
    target: Option<String>,
    sip: bool,
    preference: u8,
    transport: Option<String>,
    huntstop: bool,
    digit_strip: Option<bool>,
    forward_digits: Option<ForwardDigits>,
    prefix: Option<String>,
    keepalive: Option<Keepalive>,
    shutdown: bool,
    /// IOS lines kept above the table.
    comments: Vec<String>,
    broken: bool,
}

impl Peer {
    fn new(tag: u32, line: usize) -> Peer {
        Peer {
            tag,
            line,
            pattern: None,
            target: None,
            sip: false,
            preference: 0,
            transport: None,
            huntstop: false,
            digit_strip: None,
            forward_digits: None,
            prefix: None,
            keepalive: None,
            shutdown: false,
            comments: Vec::new(),
            broken: false,
        }
    }
}

#[derive(Debug, Default)]
struct Importer {
    diags: Diags,
    peers: BTreeMap<u32, Peer>,
    /// The type each tag was opened with, so a re-opened block can be checked.
    kinds: BTreeMap<u32, String>,
    /// A `dial-peer hunt` other than 0: (its line, the scheme).
    hunt: Option<(usize, u8)>,
}

impl Importer {
    /// Handles a line at column 1 and says what its indented lines belong to.
    fn top_line(&mut self, line_no: usize, trimmed: &str, toks: &[Tok]) -> State {
        if toks[0].is("dial-peer")
            && let Some(sub) = toks.get(1)
        {
            if sub.is("voice") {
                return self.dial_peer(line_no, toks);
            }
            if sub.is("hunt") {
                self.hunt(line_no, toks);
                return State::Top;
            }
        }
        self.diags.ignored(line_no, trimmed);
        State::Swallow
    }

    fn dial_peer(&mut self, line_no: usize, toks: &[Tok]) -> State {
        let Some(tag_tok) = toks.get(2) else {
            let col = toks[1].end();
            self.diags
                .error(line_no, col, "dial-peer voice needs a tag".to_string());
            return State::Swallow;
        };
        let tag = match tag_tok.text.parse::<u32>() {
            Ok(t) if t > 0 => t,
            _ => {
                self.diags.error(
                    line_no,
                    tag_tok.col,
                    format!("dial peer tag `{}` is not a number from 1", tag_tok.text),
                );
                return State::Swallow;
            }
        };
        let Some(kind_tok) = toks.get(3) else {
            self.diags.error(
                line_no,
                tag_tok.end(),
                format!("dial-peer voice {tag} needs a type (voip or pots)"),
            );
            return State::Swallow;
        };
        let kind = kind_tok.text.to_ascii_lowercase();
        match self.kinds.get(&tag) {
            Some(k) if *k != kind => {
                // IOS refuses to change a peer's type in place; so do we,
                // rather than guess which block the user meant.
                self.diags.error(
                    line_no,
                    kind_tok.col,
                    format!("dial peer {tag} is already a {k} peer and cannot become {kind}"),
                );
                return State::Swallow;
            }
            Some(_) => {}
            None => {
                self.kinds.insert(tag, kind.clone());
                match kind.as_str() {
                    "voip" => {}
                    "pots" => self.diags.warn(
                        line_no,
                        1,
                        format!("POTS peer {tag} skipped: local extensions are endpoints here"),
                    ),
                    _ => self.diags.warn(
                        line_no,
                        kind_tok.col,
                        format!("dial peer {tag}: `{kind}` peers are not supported; skipped"),
                    ),
                }
            }
        }
        if kind != "voip" {
            return State::Swallow;
        }
        // Re-opening a tag continues the same peer, as IOS does.
        self.peers
            .entry(tag)
            .or_insert_with(|| Peer::new(tag, line_no));
        State::Peer(tag)
    }

    fn hunt(&mut self, line_no: usize, toks: &[Tok]) {
        let Some(n) = toks.get(2) else {
            let col = toks[1].end();
            self.diags.error(
                line_no,
                col,
                "dial-peer hunt needs a scheme 0 to 7".to_string(),
            );
            return;
        };
        match n.text.parse::<u8>() {
            Ok(0) => self.hunt = None,
            Ok(s) if s <= 7 => {
                self.hunt = Some((line_no, s));
                self.diags.warn(
                    line_no,
                    n.col,
                    format!(
                        "dial-peer hunt {s} not imported: only scheme 0 (longest match, \
                         then preference, then sharing) is implemented"
                    ),
                );
            }
            _ => self.diags.error(
                line_no,
                n.col,
                format!("dial-peer hunt `{}` is not a scheme 0 to 7", n.text),
            ),
        }
    }

    fn peer_line(&mut self, tag: u32, line_no: usize, trimmed: &str, toks: &[Tok]) {
        let peer = self.peers.get_mut(&tag).expect("opened by dial_peer");
        if let Err(f) = apply(peer, &mut self.diags, line_no, trimmed, toks) {
            peer.broken = true;
            self.diags
                .error(line_no, f.col, format!("dial peer {tag}: {}", f.message));
        }
    }

    fn finish(mut self) -> Import {
        let mut toml = String::from("# generated by softswitch gateway import-ios\n");
        if let Some((line, s)) = self.hunt {
            // The [gateway] table has no hunt key yet; a comment records what
            // IOS asked for without making the config fail to load.
            let _ = write!(
                toml,
                "\n# [gateway]\n\
                 # IOS line {line}: dial-peer hunt {s}; only scheme 0 is implemented\n"
            );
        }
        let mut count = 0;
        for peer in self.peers.values() {
            let tag = peer.tag;
            let line = peer.line;
            if peer.broken {
                continue;
            }
            if peer.shutdown {
                self.diags.warn(
                    line,
                    1,
                    format!("dial peer {tag} is shut down in IOS: skipped"),
                );
                continue;
            }
            let (Some(pattern), Some(target)) = (&peer.pattern, &peer.target) else {
                let why = match (&peer.pattern, &peer.target) {
                    (None, None) => "has neither destination-pattern nor session target",
                    (None, Some(_)) => "has no destination-pattern (an inbound-only peer)",
                    _ => "has no session target, so IOS never brings it up",
                };
                self.diags
                    .warn(line, 1, format!("dial peer {tag} {why}: skipped"));
                continue;
            };
            if !peer.sip {
                self.diags.warn(
                    line,
                    1,
                    format!("dial peer {tag}: H.323 peer converted to SIP"),
                );
            }
            toml.push('\n');
            for c in &peer.comments {
                let _ = writeln!(toml, "# IOS: {}", comment_text(c));
            }
            toml.push_str("[[dial_peer]]\n");
            let _ = writeln!(toml, "tag = {tag}");
            let _ = writeln!(toml, "destination_pattern = {}", quote(pattern));
            let _ = writeln!(toml, "session_target = {}", quote(target));
            if peer.preference != 0 {
                let _ = writeln!(toml, "preference = {}", peer.preference);
            }
            if let Some(t) = peer.transport.as_deref().filter(|t| *t != "udp") {
                let _ = writeln!(toml, "transport = {}", quote(t));
            }
            if peer.huntstop {
                toml.push_str("huntstop = true\n");
            }
            if let Some(s) = peer.digit_strip {
                let _ = writeln!(toml, "digit_strip = {s}");
            }
            match &peer.forward_digits {
                Some(ForwardDigits::Last(n)) => {
                    let _ = writeln!(toml, "forward_digits = {n}");
                }
                Some(ForwardDigits::All) => toml.push_str("forward_digits = \"all\"\n"),
                Some(ForwardDigits::Extra) => toml.push_str("forward_digits = \"extra\"\n"),
                None => {}
            }
            if let Some(p) = &peer.prefix {
                let _ = writeln!(toml, "prefix = {}", quote(p));
            }
            if let Some(k) = &peer.keepalive {
                let fields: Vec<String> = [
                    ("interval", k.interval),
                    ("down_interval", k.down_interval),
                    ("fall", k.fall),
                ]
                .into_iter()
                .filter_map(|(name, v)| v.map(|v| format!("{name} = {v}")))
                .collect();
                if fields.is_empty() {
                    toml.push_str("options_keepalive = {}\n");
                } else {
                    let _ = writeln!(toml, "options_keepalive = {{ {} }}", fields.join(", "));
                }
            }
            count += 1;
        }
        let mut diagnostics = self.diags.0;
        diagnostics.sort_by_key(|d| (d.line, d.col));
        Import {
            toml,
            diagnostics,
            peers: count,
        }
    }
}

/// The word at `i`, or a failure pointing just past the line's last word.
fn arg<'a>(args: &[Tok<'a>], i: usize, what: &str) -> Result<Tok<'a>, Fail> {
    match args.get(i) {
        Some(t) => Ok(*t),
        None => fail(
            args.last().map_or(1, Tok::end),
            format!("{what} is missing"),
        ),
    }
}

/// Fails on a word after the last one a command takes, so a stray space inside
/// a pattern or target is not silently cut off.
fn no_more(args: &[Tok], n: usize) -> Result<(), Fail> {
    match args.get(n) {
        Some(t) => fail(t.col, format!("unexpected `{}`", t.text)),
        None => Ok(()),
    }
}

/// Applies one sub-command of a VoIP dial peer.
fn apply(
    peer: &mut Peer,
    diags: &mut Diags,
    line_no: usize,
    trimmed: &str,
    toks: &[Tok],
) -> Result<(), Fail> {
    let tag = peer.tag;
    let (neg, args) = match toks.split_first() {
        Some((first, rest)) if first.is("no") && !rest.is_empty() => (true, rest),
        _ => (false, toks),
    };
    let cmd = args[0];
    let word = |i: usize| args.get(i).map(|t| t.text.to_ascii_lowercase());
    let keep = |peer: &mut Peer, diags: &mut Diags| {
        peer.comments.push(trimmed.to_string());
        diags.warn(
            line_no,
            cmd.col,
            format!(
                "dial peer {tag}: `{trimmed}` kept as a comment: \
                 this switch does not apply it per peer"
            ),
        );
    };
    match (cmd.text.to_ascii_lowercase().as_str(), neg) {
        ("destination-pattern", true) => peer.pattern = None,
        ("destination-pattern", false) => {
            let p = arg(args, 1, "the destination-pattern")?;
            no_more(args, 2)?;
            if let Err(e) = Pattern::parse(p.text) {
                let col = p.col + p.text.chars().take(e.at - 1).count();
                return fail(
                    col,
                    format!("destination-pattern `{}`: {}", p.text, e.message),
                );
            }
            peer.pattern = Some(p.text.to_string());
        }
        ("session", _) => match (word(1).as_deref(), neg) {
            (Some("target"), true) => peer.target = None,
            (Some("target"), false) => {
                let t = arg(args, 2, "the session target")?;
                no_more(args, 3)?;
                peer.target = Some(session_target(t)?);
            }
            (Some("protocol"), true) => peer.sip = false,
            (Some("protocol"), false) => {
                let p = arg(args, 2, "the session protocol")?;
                peer.sip = match p.text.to_ascii_lowercase().as_str() {
                    "sipv2" => true,
                    // `cisco` is H.323 spelt out; the H.323 warning covers it.
                    "cisco" => false,
                    other => {
                        return fail(
                            p.col,
                            format!("session protocol `{other}` is not supported"),
                        );
                    }
                };
            }
            (Some("transport"), true) => peer.transport = None,
            (Some("transport"), false) => {
                let t = arg(args, 2, "the session transport")?;
                let lower = t.text.to_ascii_lowercase();
                match lower.as_str() {
                    "udp" | "tcp" | "tls" => peer.transport = Some(lower),
                    "system" => {
                        peer.transport = None;
                        diags.warn(
                            line_no,
                            t.col,
                            format!(
                                "dial peer {tag}: `session transport system` follows the global \
                                 IOS setting, which is not imported; the peer uses udp"
                            ),
                        );
                    }
                    _ => {
                        return fail(
                            t.col,
                            format!("session transport `{}` is not udp, tcp or tls", t.text),
                        );
                    }
                }
            }
            (Some("server-group"), false) => {
                return fail(
                    cmd.col,
                    "session server-group is not supported: write one dial peer per server, \
                     with the same destination-pattern and preference",
                );
            }
            _ => diags.ignored(line_no, trimmed),
        },
        ("preference", true) => peer.preference = 0,
        ("preference", false) => {
            let v = arg(args, 1, "the preference")?;
            peer.preference = match v.text.parse::<u8>() {
                Ok(n) if n <= 10 => n,
                _ => return fail(v.col, format!("preference `{}` is not 0 to 10", v.text)),
            };
        }
        ("huntstop", _) => peer.huntstop = !neg,
        ("digit-strip", _) => peer.digit_strip = Some(!neg),
        ("forward-digits", true) => peer.forward_digits = None,
        ("forward-digits", false) => {
            let v = arg(args, 1, "the forward-digits count")?;
            peer.forward_digits = Some(match v.text.to_ascii_lowercase().as_str() {
                "all" => ForwardDigits::All,
                "extra" => ForwardDigits::Extra,
                n => match n.parse::<u8>() {
                    Ok(n) if n <= 32 => ForwardDigits::Last(n),
                    _ => {
                        return fail(
                            v.col,
                            format!("forward-digits `{}` is not 0 to 32, all or extra", v.text),
                        );
                    }
                },
            });
        }
        ("prefix", true) => peer.prefix = None,
        ("prefix", false) => {
            let v = arg(args, 1, "the prefix digits")?;
            no_more(args, 2)?;
            let allowed = |(i, c): &(usize, char)| {
                c.is_ascii_digit() || "*#,".contains(*c) || (*c == '+' && *i == 0)
            };
            if let Some((i, c)) = v.text.char_indices().find(|ic| !allowed(ic)) {
                return fail(
                    v.col_at(i),
                    format!("prefix `{}`: `{c}` is not a digit", v.text),
                );
            }
            // A comma is a dialling pause for analogue lines; a SIP number
            // cannot carry one, and the peer checker refuses it.
            let digits: String = v.text.chars().filter(|&c| c != ',').collect();
            if digits.len() != v.text.len() {
                diags.warn(
                    line_no,
                    v.col,
                    format!(
                        "dial peer {tag}: pauses (`,`) dropped from prefix `{}`",
                        v.text
                    ),
                );
            }
            peer.prefix = (!digits.is_empty()).then_some(digits);
        }
        ("voice-class", _) => match (word(1).as_deref(), word(2).as_deref(), neg) {
            (Some("sip"), Some("options-keepalive"), true) => peer.keepalive = None,
            (Some("sip"), Some("options-keepalive"), false) => {
                peer.keepalive = Some(keepalive(tag, diags, line_no, &args[3..])?);
            }
            (Some("codec"), _, false) => keep(peer, diags),
            _ => diags.ignored(line_no, trimmed),
        },
        ("incoming", false) if word(1).as_deref() == Some("called-number") => keep(peer, diags),
        ("answer-address" | "dtmf-relay" | "codec" | "translation-profile", false) => {
            keep(peer, diags)
        }
        // The description travels as a comment; it changes nothing, so no warning.
        ("description", false) => peer.comments.push(trimmed.to_string()),
        ("shutdown", _) => peer.shutdown = !neg,
        _ => diags.ignored(line_no, trimmed),
    }
    Ok(())
}

/// `[up-interval S] [down-interval S] [retry N] [transport …] [profile N]`.
fn keepalive(tag: u32, diags: &mut Diags, line_no: usize, opts: &[Tok]) -> Result<Keepalive, Fail> {
    let mut k = Keepalive::default();
    let mut i = 0;
    while i < opts.len() {
        let key = opts[i];
        let lower = key.text.to_ascii_lowercase();
        match lower.as_str() {
            "up-interval" | "down-interval" | "retry" => {
                let v = arg(opts, i + 1, &format!("the {lower} value"))?;
                let n = match v.text.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return fail(
                            v.col,
                            format!("{lower} `{}` is not a positive number", v.text),
                        );
                    }
                };
                let slot = match lower.as_str() {
                    "up-interval" => &mut k.interval,
                    "down-interval" => &mut k.down_interval,
                    _ => &mut k.fall,
                };
                *slot = Some(n);
                i += 2;
            }
            "transport" => {
                diags.warn(
                    line_no,
                    key.col,
                    format!(
                        "dial peer {tag}: keepalive transport not imported: \
                         probes use the peer's transport"
                    ),
                );
                i += 2;
                if opts.get(i).is_some_and(|t| t.is("sip-server")) {
                    i += 1;
                }
            }
            "profile" => {
                // The profile's intervals live in another block that is not
                // imported; the probe still runs, with this switch's defaults.
                diags.warn(
                    line_no,
                    key.col,
                    format!(
                        "dial peer {tag}: options-keepalive profile not imported: \
                         the peer is probed with the default intervals"
                    ),
                );
                i += 2;
            }
            _ => {
                return fail(
                    key.col,
                    format!("options-keepalive option `{}` is not known", key.text),
                );
            }
        }
    }
    Ok(k)
}

/// Checks an IOS session target the switch can use and returns it with its
/// kind in lower case, as the `[[dial_peer]]` checker expects.
fn session_target(t: Tok) -> Result<String, Fail> {
    let s = t.text;
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "ras" => {
            return fail(
                t.col,
                "session target ras (an H.323 gatekeeper) is not supported",
            );
        }
        "sip-server" => {
            return fail(
                t.col,
                "session target sip-server is not supported: put the sip-ua sip-server \
                 address on this peer as session target ipv4:… or dns:…",
            );
        }
        "registrar" => {
            return fail(
                t.col,
                "session target registrar is not supported: phones registered here are \
                 reached with Dial(SIP/…) in the dialplan, not through a dial peer",
            );
        }
        _ => {}
    }
    let unsupported = || {
        fail(
            t.col,
            format!("session target `{s}` is not supported: use ipv4:, ipv6: or dns:"),
        )
    };
    let Some((kind, _)) = lower.split_once(':') else {
        return unsupported();
    };
    let rest = &s[kind.len() + 1..];
    let rest_at = kind.len() + 1;
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    match kind {
        "ipv4" => {
            let (host, port) = match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            if host.parse::<Ipv4Addr>().is_err() {
                return fail(
                    t.col_at(rest_at),
                    format!("`{host}` is not an IPv4 address"),
                );
            }
            if let Some(p) = port.filter(|p| !port_ok(p)) {
                let at = rest_at + host.len() + 1;
                return fail(t.col_at(at), format!("`{p}` is not a port"));
            }
        }
        "ipv6" => {
            let bad = || {
                fail(
                    t.col_at(rest_at),
                    format!("`{rest}` is not [IPv6 address] with an optional :port"),
                )
            };
            let Some((host, after)) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
                return bad();
            };
            if host.parse::<Ipv6Addr>().is_err() {
                return bad();
            }
            match after.strip_prefix(':') {
                None if after.is_empty() => {}
                Some(p) if port_ok(p) => {}
                _ => return bad(),
            }
        }
        "dns" => {
            if let Some(i) = rest.find('$') {
                return fail(
                    t.col_at(rest_at + i),
                    "session target dns: macros ($s$, $d$, $e$, $u$) are not supported; \
                     give a fixed host name",
                );
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !host_ok {
                return fail(t.col_at(rest_at), format!("`{host}` is not a host name"));
            }
            if let Some(p) = port.filter(|p| !port_ok(p)) {
                let at = rest_at + host.len() + 1;
                return fail(t.col_at(at), format!("`{p}` is not a port"));
            }
        }
        "enum" => return fail(t.col, "session target enum: (ENUM lookup) is not supported"),
        _ => return unsupported(),
    }
    Ok(format!("{kind}:{rest}"))
}

/// A TOML basic string holding exactly `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// TOML forbids control characters in comments; an IOS line rarely has one,
/// but a stray one must not make the whole file unreadable.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_toml(import: &Import) -> toml::Table {
        toml::from_str(&import.toml).unwrap_or_else(|e| panic!("{e}\n{}", import.toml))
    }

    fn peers(import: &Import) -> Vec<toml::Table> {
        match parse_toml(import).get("dial_peer") {
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| v.as_table().expect("a table").clone())
                .collect(),
            None => Vec::new(),
            other => panic!("dial_peer is {other:?}"),
        }
    }

    fn rendered(import: &Import, severity: Severity) -> Vec<String> {
        import
            .diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| d.render("r1.cfg"))
            .collect()
    }

    const SEED_R1: &str = "\
hostname R1
!
telephony-service
 max-ephones 5
 max-dn 5
 ip source-address 192.168.100.1 port 2000
!
ephone-dn 1
 number 111
!
ephone 1
 mac-address 0001.4321.ABCD
 button 1:1
!
dial-peer voice 1 voip
 destination-pattern 22.
 session target ipv4:192.168.100.2
!
end
";

    #[test]
    fn seed_lab_r1_becomes_one_sip_peer() {
        let import = import_ios(SEED_R1);
        assert_eq!(import.peers, 1);
        assert!(!import.has_errors());
        assert_eq!(
            import.toml,
            "# generated by softswitch gateway import-ios\n\
             \n\
             [[dial_peer]]\n\
             tag = 1\n\
             destination_pattern = \"22.\"\n\
             session_target = \"ipv4:192.168.100.2\"\n"
        );
        assert_eq!(
            rendered(&import, Severity::Warning),
            ["r1.cfg:15:1: warning: dial peer 1: H.323 peer converted to SIP"]
        );
        assert_eq!(
            rendered(&import, Severity::Ignored),
            [
                "r1.cfg:1: ignored: hostname R1",
                "r1.cfg:3: ignored: telephony-service",
                "r1.cfg:8: ignored: ephone-dn 1",
                "r1.cfg:11: ignored: ephone 1",
                "r1.cfg:19: ignored: end",
            ]
        );
        let p = &peers(&import)[0];
        assert_eq!(p["tag"].as_integer(), Some(1));
        assert_eq!(p["destination_pattern"].as_str(), Some("22."));
    }

    #[test]
    fn every_supported_sub_command() {
        let text = "\
dial-peer voice 100 voip
 description to site B \"main\"
 destination-pattern 9[2-4]..T
 session protocol sipv2
 session target dns:pbx-b.example.net:5070
 session transport tcp
 preference 2
 huntstop
 no digit-strip
 forward-digits extra
 prefix 81
 voice-class sip options-keepalive up-interval 30 down-interval 10 retry 3
 incoming called-number 5...
 answer-address 7...
 dtmf-relay rtp-nte
 codec g711ulaw
 voice-class codec 1
 translation-profile outgoing OUT
 no vad
";
        let import = import_ios(text);
        assert!(!import.has_errors(), "{:?}", import.diagnostics);
        assert_eq!(import.peers, 1);
        let want = "\
# IOS: description to site B \"main\"
# IOS: incoming called-number 5...
# IOS: answer-address 7...
# IOS: dtmf-relay rtp-nte
# IOS: codec g711ulaw
# IOS: voice-class codec 1
# IOS: translation-profile outgoing OUT
[[dial_peer]]
tag = 100
destination_pattern = \"9[2-4]..T\"
session_target = \"dns:pbx-b.example.net:5070\"
preference = 2
transport = \"tcp\"
huntstop = true
digit_strip = false
forward_digits = \"extra\"
prefix = \"81\"
options_keepalive = { interval = 30, down_interval = 10, fall = 3 }
";
        assert!(import.toml.ends_with(want), "{}", import.toml);
        let warnings = rendered(&import, Severity::Warning);
        assert_eq!(warnings.len(), 6, "{warnings:?}");
        assert_eq!(
            warnings[0],
            "r1.cfg:13:2: warning: dial peer 100: `incoming called-number 5...` kept as a \
             comment: this switch does not apply it per peer"
        );
        assert!(!warnings.iter().any(|w| w.contains("H.323")));
        assert_eq!(
            rendered(&import, Severity::Ignored),
            ["r1.cfg:19: ignored: no vad"]
        );

        let p = &peers(&import)[0];
        assert_eq!(p["forward_digits"].as_str(), Some("extra"));
        assert_eq!(p["options_keepalive"]["fall"].as_integer(), Some(3));
    }

    #[test]
    fn forward_digits_count_and_all() {
        let base = "dial-peer voice 1 voip\n session protocol sipv2\n \
                    destination-pattern 9T\n session target ipv4:10.0.0.1\n";
        let p = &peers(&import_ios(&format!(
            "{base} forward-digits 4\n digit-strip\n"
        )))[0];
        assert_eq!(p["forward_digits"].as_integer(), Some(4));
        assert_eq!(p["digit_strip"].as_bool(), Some(true));
        let import = import_ios(&format!("{base} prefix 9,,1\n"));
        assert_eq!(peers(&import)[0]["prefix"].as_str(), Some("91"));
        assert_eq!(
            rendered(&import, Severity::Warning),
            ["r1.cfg:5:9: warning: dial peer 1: pauses (`,`) dropped from prefix `9,,1`"]
        );
        let import = import_ios(&format!("{base} prefix 9x\n"));
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:10: error: dial peer 1: prefix `9x`: `x` is not a digit"]
        );
        let p = &peers(&import_ios(&format!("{base} forward-digits all\n")))[0];
        assert_eq!(p["forward_digits"].as_str(), Some("all"));
        let import = import_ios(&format!("{base} forward-digits 33\n"));
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:17: error: dial peer 1: forward-digits `33` is not 0 to 32, all or extra"]
        );
    }

    #[test]
    fn a_repeated_tag_continues_the_same_peer() {
        let text = "\
dial-peer voice 7 voip
 destination-pattern 5...
 preference 3
!
dial-peer voice 2 voip
 destination-pattern 3...
 session target ipv4:10.0.0.3
 session protocol sipv2
!
dial-peer voice 7 voip
 destination-pattern 55..
 session target ipv4:10.0.0.5:5070
 session protocol sipv2
";
        let import = import_ios(text);
        assert!(import.diagnostics.is_empty(), "{:?}", import.diagnostics);
        let ps = peers(&import);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0]["tag"].as_integer(), Some(2), "tag order");
        assert_eq!(ps[1]["tag"].as_integer(), Some(7));
        assert_eq!(ps[1]["destination_pattern"].as_str(), Some("55.."));
        assert_eq!(ps[1]["session_target"].as_str(), Some("ipv4:10.0.0.5:5070"));
        assert_eq!(ps[1]["preference"].as_integer(), Some(3));
    }

    #[test]
    fn a_tag_cannot_change_type() {
        let text = "\
dial-peer voice 7 voip
 destination-pattern 5...
 session target ipv4:10.0.0.5
 session protocol sipv2
dial-peer voice 7 pots
 port 0/0/0
";
        let import = import_ios(text);
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:19: error: dial peer 7 is already a voip peer and cannot become pots"]
        );
        assert_eq!(import.peers, 1);
    }

    #[test]
    fn a_bad_pattern_points_at_its_character() {
        let text = "\
dial-peer voice 1 voip
 destination-pattern 22a
 session target ipv4:192.168.100.2
";
        let import = import_ios(text);
        assert!(import.has_errors());
        assert_eq!(import.peers, 0, "a peer with an error is left out");
        assert_eq!(
            rendered(&import, Severity::Error),
            [
                "r1.cfg:2:24: error: dial peer 1: destination-pattern `22a`: `a` is not a \
              destination-pattern character"
            ]
        );
        // The error explains the missing peer; no further warning about it.
        assert!(rendered(&import, Severity::Warning).is_empty());
        assert!(!import.toml.contains("[[dial_peer]]"));
    }

    #[test]
    fn session_targets_that_cannot_be_imported_are_errors() {
        let cases = [
            ("ras", 17, "H.323 gatekeeper"),
            ("enum:1", 17, "ENUM"),
            ("sip-server", 17, "put the sip-ua sip-server address"),
            ("registrar", 17, "Dial(SIP/…)"),
            ("dns:$d$.example.net", 21, "macros"),
            ("ipv4:192.168.1.300", 22, "not an IPv4 address"),
            ("ipv4:10.0.0.1:0", 31, "not a port"),
            ("ipv6:::1", 22, "[IPv6 address]"),
            ("loopback:rtp", 17, "use ipv4:, ipv6: or dns:"),
        ];
        for (target, col, needle) in cases {
            let text = format!(
                "dial-peer voice 1 voip\n destination-pattern 2...\n session target {target}\n"
            );
            let import = import_ios(&text);
            let errors: Vec<_> = import
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            assert_eq!(errors.len(), 1, "{target}: {:?}", import.diagnostics);
            assert_eq!((errors[0].line, errors[0].col), (3, col), "{target}");
            assert!(
                errors[0].message.contains(needle),
                "{target}: {}",
                errors[0].message
            );
            assert_eq!(import.peers, 0);
        }
    }

    #[test]
    fn session_targets_that_import() {
        for (target, want) in [
            ("ipv4:192.168.100.2", "ipv4:192.168.100.2"),
            ("IPV4:10.0.0.1:5080", "ipv4:10.0.0.1:5080"),
            ("ipv6:[2001:db8::1]:5060", "ipv6:[2001:db8::1]:5060"),
            ("ipv6:[::1]", "ipv6:[::1]"),
            ("dns:pbx.example.net", "dns:pbx.example.net"),
        ] {
            let text = format!(
                "dial-peer voice 1 voip\n destination-pattern 2...\n session target {target}\n"
            );
            let import = import_ios(&text);
            assert!(!import.has_errors(), "{target}: {:?}", import.diagnostics);
            assert_eq!(peers(&import)[0]["session_target"].as_str(), Some(want));
        }
    }

    #[test]
    fn preference_out_of_range_is_an_error() {
        let text = "\
dial-peer voice 1 voip
 destination-pattern 2...
 session target ipv4:10.0.0.1
 preference 11
";
        let import = import_ios(text);
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:4:13: error: dial peer 1: preference `11` is not 0 to 10"]
        );
    }

    #[test]
    fn pots_peers_are_skipped_with_their_sub_lines() {
        let text = "\
dial-peer voice 10 pots
 destination-pattern 111
 port 0/0/0
 no digit-strip
!
dial-peer voice 10 pots
 forward-digits all
";
        let import = import_ios(text);
        assert_eq!(import.peers, 0);
        assert_eq!(
            import
                .diagnostics
                .iter()
                .map(|d| d.render("r1.cfg"))
                .collect::<Vec<_>>(),
            ["r1.cfg:1:1: warning: POTS peer 10 skipped: local extensions are endpoints here"]
        );
    }

    #[test]
    fn peers_that_are_never_up_are_skipped() {
        let text = "\
dial-peer voice 1 voip
 incoming called-number .
 session protocol sipv2
dial-peer voice 2 voip
 destination-pattern 2...
 session protocol sipv2
dial-peer voice 3 voip
 destination-pattern 3...
 session target ipv4:10.0.0.3
 session protocol sipv2
 shutdown
";
        let import = import_ios(text);
        assert_eq!(import.peers, 0);
        let w = rendered(&import, Severity::Warning);
        for want in [
            "r1.cfg:1:1: warning: dial peer 1 has neither destination-pattern nor session \
             target: skipped",
            "r1.cfg:4:1: warning: dial peer 2 has no session target, so IOS never brings it \
             up: skipped",
            "r1.cfg:7:1: warning: dial peer 3 is shut down in IOS: skipped",
        ] {
            assert!(w.iter().any(|x| x == want), "{want}\n{w:?}");
        }
    }

    #[test]
    fn options_keepalive_maps_to_an_inline_table() {
        let base = "dial-peer voice 1 voip\n destination-pattern 2...\n \
                    session target ipv4:10.0.0.1\n session protocol sipv2\n";
        let table = |line: &str| {
            let import = import_ios(&format!("{base} {line}\n"));
            assert!(!import.has_errors(), "{line}: {:?}", import.diagnostics);
            let row = import
                .toml
                .lines()
                .find(|l| l.starts_with("options_keepalive"))
                .map(str::to_string);
            (row, import)
        };
        let (row, _) = table("voice-class sip options-keepalive");
        assert_eq!(row.as_deref(), Some("options_keepalive = {}"));
        let (row, _) = table("voice-class sip options-keepalive up-interval 60");
        assert_eq!(
            row.as_deref(),
            Some("options_keepalive = { interval = 60 }")
        );
        let (row, _) = table("voice-class sip options-keepalive retry 5 down-interval 30");
        assert_eq!(
            row.as_deref(),
            Some("options_keepalive = { down_interval = 30, fall = 5 }")
        );
        let (row, import) =
            table("voice-class sip options-keepalive transport tcp sip-server retry 2");
        assert_eq!(row.as_deref(), Some("options_keepalive = { fall = 2 }"));
        assert_eq!(rendered(&import, Severity::Warning).len(), 1);
        assert_eq!(
            peers(&import)[0]["options_keepalive"]["fall"].as_integer(),
            Some(2)
        );

        let import = import_ios(&format!(
            "{base} voice-class sip options-keepalive retry 0\n"
        ));
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:42: error: dial peer 1: retry `0` is not a positive number"]
        );
        let import = import_ios(&format!(
            "{base} voice-class sip options-keepalive up-interval\n"
        ));
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:47: error: dial peer 1: the up-interval value is missing"]
        );
    }

    #[test]
    fn quoting_round_trips_through_toml() {
        for s in [
            "22.",
            "^[2-4]\\#..$",
            "say \"hi\"",
            "back\\slash\\",
            "tab\tnew\nline\r",
            "bell\u{7}del\u{7f}nul\u{0}",
            "ünïcode ☎",
        ] {
            let doc = format!("v = {}\n", quote(s));
            let t: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(t["v"].as_str(), Some(s), "{doc}");
        }
        // A comment with a control character must not break the file.
        let doc = format!("# {}\nv = 1\n", comment_text("a\u{1}b"));
        assert!(toml::from_str::<toml::Table>(&doc).is_ok(), "{doc}");
    }

    #[test]
    fn escaped_patterns_survive_the_import() {
        let text = "\
dial-peer voice 1 voip
 destination-pattern ^[2-4]\\#..$
 session target ipv4:10.0.0.1
 description a \\ \"quoted\" [note] $1
";
        let import = import_ios(text);
        assert!(!import.has_errors(), "{:?}", import.diagnostics);
        assert_eq!(
            peers(&import)[0]["destination_pattern"].as_str(),
            Some("^[2-4]\\#..$")
        );
        assert!(
            import
                .toml
                .contains("destination_pattern = \"^[2-4]\\\\#..$\"")
        );
    }

    #[test]
    fn crlf_input_reads_like_lf() {
        let crlf = SEED_R1.replace('\n', "\r\n");
        let import = import_ios(&crlf);
        assert_eq!(import, import_ios(SEED_R1));
        assert!(!import.toml.contains('\r'));

        let bad = "dial-peer voice 1 voip\r\n destination-pattern 2[5-\r\n \
                   session target ipv4:10.0.0.1\r\n";
        assert_eq!(
            rendered(&import_ios(bad), Severity::Error),
            ["r1.cfg:2:23: error: dial peer 1: destination-pattern `2[5-`: `[` is never closed"]
        );
    }

    #[test]
    fn tabs_indent_sub_commands() {
        let text = "dial-peer voice 1 voip\n\tdestination-pattern 22.\n\
                    \t\tsession target ipv4:192.168.100.2\n\tpreference 12\n";
        let import = import_ios(text);
        // A tab is one column: `preference` starts at 2, its value at 13.
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:4:13: error: dial peer 1: preference `12` is not 0 to 10"]
        );
        let import = import_ios(&text.replace("preference 12", "preference 1"));
        let p = &peers(&import)[0];
        assert_eq!(p["session_target"].as_str(), Some("ipv4:192.168.100.2"));
        assert_eq!(p["preference"].as_integer(), Some(1));
    }

    #[test]
    fn a_bang_closes_a_peer_block() {
        let text = "\
dial-peer voice 1 voip
 destination-pattern 22.
!
 session target ipv4:192.168.100.2
 huntstop
hostname R1
";
        let import = import_ios(text);
        assert_eq!(
            import
                .diagnostics
                .iter()
                .map(|d| d.render("r1.cfg"))
                .collect::<Vec<_>>(),
            [
                "r1.cfg:1:1: warning: dial peer 1 has no session target, so IOS never \
                 brings it up: skipped",
                "r1.cfg:4: ignored: session target ipv4:192.168.100.2",
                "r1.cfg:6: ignored: hostname R1",
            ]
        );
    }

    #[test]
    fn dial_peer_hunt() {
        let zero = import_ios("dial-peer hunt 0\n");
        assert!(zero.diagnostics.is_empty());
        assert!(!zero.toml.contains("[gateway]"));

        let three = import_ios("dial-peer hunt 3\n");
        assert_eq!(
            rendered(&three, Severity::Warning),
            [
                "r1.cfg:1:16: warning: dial-peer hunt 3 not imported: only scheme 0 (longest \
              match, then preference, then sharing) is implemented"
            ]
        );
        assert!(three.toml.contains("# [gateway]\n"), "{}", three.toml);
        assert!(toml::from_str::<toml::Table>(&three.toml).is_ok());

        let bad = import_ios("dial-peer hunt 9\n");
        assert!(bad.has_errors());
    }

    #[test]
    fn render_forms() {
        let d = Diagnostic {
            line: 3,
            col: 7,
            severity: Severity::Error,
            message: "m".into(),
        };
        assert_eq!(d.render("f"), "f:3:7: error: m");
        let d = Diagnostic {
            col: 0,
            severity: Severity::Ignored,
            ..d
        };
        assert_eq!(d.render("f"), "f:3: ignored: m");
    }
}
