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
//!
//! `voice translation-rule` and `voice translation-profile` blocks are read
//! too, wherever they stand in the file (IOS prints them before the dial peers,
//! but a hand-made file may not): a peer's `translation-profile outgoing NAME`
//! becomes that profile's rules, written out inline as `translate_called` and
//! `translate_calling` in the regex syntax of the `regex` crate. IOS writes
//! groups as `\(…\)` and refers to them as `\1`; here they are `(…)` and
//! `${1}`, and a bare `(` of IOS, which is a literal, becomes `\(`.

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
                State::RuleSet(set) => {
                    imp.rule_line(set, line_no, line, trimmed, &toks);
                    state
                }
                State::Profile => {
                    imp.profile_line(line_no, trimmed, &toks);
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
    /// Inside `voice translation-rule N`.
    RuleSet(u32),
    /// Inside `voice translation-profile NAME` (the name is
    /// `Importer::profile_open`).
    Profile,
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
    /// Where the word starts in its line, in bytes.
    byte: usize,
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
                    byte: b,
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
            byte: b,
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
    /// `translation-profile outgoing NAME`, resolved when the whole file has
    /// been read.
    outgoing: Option<ProfileUse>,
    shutdown: bool,
    /// IOS lines kept above the table.
    comments: Vec<String>,
    broken: bool,
}

/// A peer's `translation-profile outgoing NAME`.
#[derive(Debug)]
struct ProfileUse {
    name: String,
    /// Where the name is written, for the errors about it.
    line: usize,
    col: usize,
    /// The index in `Peer::comments` of the IOS line, written only when
    /// something of the profile is not carried over.
    comment: usize,
}

/// `voice translation-rule N`: its rules by number.
#[derive(Debug, Default)]
struct RuleSet {
    rules: BTreeMap<u32, RuleEntry>,
    /// A rule line had an error: peers that use the set are left out.
    broken: bool,
}

#[derive(Debug)]
enum RuleEntry {
    /// `rule K /MATCH/ /REPLACE/`, converted to the `regex` crate's syntax.
    Rewrite {
        pattern: String,
        replace: String,
        /// The `type …`/`plan …` settings that follow, not carried over.
        dropped: Option<String>,
    },
    /// `rule K reject /MATCH/`, which has no equivalent here; the IOS text.
    Reject(String),
}

/// `voice translation-profile NAME`.
#[derive(Debug, Default)]
struct Profile {
    called: Option<SetUse>,
    calling: Option<SetUse>,
    /// `translate redirect-called N` and the like, not carried over: the IOS
    /// line by what it translates.
    other: BTreeMap<String, String>,
    /// A line of the profile had an error: peers that use it are left out.
    broken: bool,
}

/// `translate called|calling N` in a profile.
#[derive(Debug, Clone, Copy)]
struct SetUse {
    set: u32,
    line: usize,
}

/// A profile's rules, ready to be written into a peer.
#[derive(Debug, Default)]
struct Translations {
    called: Vec<(String, String)>,
    calling: Vec<(String, String)>,
    /// What IOS would do that the TOML does not, for the peer's comment.
    not_carried: Vec<String>,
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
            outgoing: None,
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
    rule_sets: BTreeMap<u32, RuleSet>,
    profiles: BTreeMap<String, Profile>,
    /// The name of the `voice translation-profile` block being read.
    profile_open: String,
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
        if toks[0].is("voice")
            && let Some(sub) = toks.get(1)
        {
            if sub.is("translation-rule") {
                return self.rule_set(line_no, toks);
            }
            if sub.is("translation-profile") {
                return self.profile(line_no, toks);
            }
        }
        self.diags.ignored(line_no, trimmed);
        State::Swallow
    }

    /// `voice translation-rule N`; a repeated N adds to the same set.
    fn rule_set(&mut self, line_no: usize, toks: &[Tok]) -> State {
        let Some(n) = toks.get(2) else {
            self.diags.error(
                line_no,
                toks[1].end(),
                "voice translation-rule needs a number".to_string(),
            );
            return State::Swallow;
        };
        match n.text.parse::<u32>() {
            Ok(set) if set > 0 => {
                self.rule_sets.entry(set).or_default();
                State::RuleSet(set)
            }
            _ => {
                self.diags.error(
                    line_no,
                    n.col,
                    format!("voice translation-rule `{}` is not a number from 1", n.text),
                );
                State::Swallow
            }
        }
    }

    /// `voice translation-profile NAME`; a repeated NAME adds to the same profile.
    fn profile(&mut self, line_no: usize, toks: &[Tok]) -> State {
        let Some(name) = toks.get(2) else {
            self.diags.error(
                line_no,
                toks[1].end(),
                "voice translation-profile needs a name".to_string(),
            );
            return State::Swallow;
        };
        self.profiles.entry(name.text.to_string()).or_default();
        self.profile_open = name.text.to_string();
        State::Profile
    }

    /// A line of `voice translation-rule SET`.
    fn rule_line(&mut self, set: u32, line_no: usize, line: &str, trimmed: &str, toks: &[Tok]) {
        if !toks[0].is("rule") {
            self.diags.ignored(line_no, trimmed);
            return;
        }
        let rules = self.rule_sets.get_mut(&set).expect("opened by rule_set");
        match rule(set, &mut self.diags, line_no, line, trimmed, toks) {
            Ok((k, entry)) => {
                // Entering a number again replaces that rule, as IOS does.
                rules.rules.insert(k, entry);
            }
            Err(f) => {
                rules.broken = true;
                self.diags.error(
                    line_no,
                    f.col,
                    format!("voice translation-rule {set}: {}", f.message),
                );
            }
        }
    }

    /// A line of the `voice translation-profile` being read.
    fn profile_line(&mut self, line_no: usize, trimmed: &str, toks: &[Tok]) {
        let name = &self.profile_open;
        if !toks[0].is("translate") {
            self.diags.ignored(line_no, trimmed);
            return;
        }
        let profile = self.profiles.get_mut(name).expect("opened by profile");
        let parsed = (|| {
            let what = arg(toks, 1, "what to translate (called or calling)")?;
            let n = arg(toks, 2, "the voice translation-rule number")?;
            no_more(toks, 3)?;
            match n.text.parse::<u32>() {
                Ok(set) if set > 0 => Ok((what, set)),
                _ => fail(
                    n.col,
                    format!("voice translation-rule `{}` is not a number from 1", n.text),
                ),
            }
        })();
        let (what, set) = match parsed {
            Ok(v) => v,
            Err(f) => {
                profile.broken = true;
                self.diags.error(
                    line_no,
                    f.col,
                    format!("voice translation-profile {name}: {}", f.message),
                );
                return;
            }
        };
        let used = Some(SetUse { set, line: line_no });
        let kind = what.text.to_ascii_lowercase();
        match kind.as_str() {
            "called" => profile.called = used,
            "calling" => profile.calling = used,
            _ => {
                self.diags.warn(
                    line_no,
                    what.col,
                    format!(
                        "voice translation-profile {name}: `{trimmed}` not imported: this \
                         switch translates only the called and calling numbers"
                    ),
                );
                profile.other.insert(kind, trimmed.to_string());
            }
        }
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
            // An unknown profile is an error even on a peer skipped below: the
            // IOS text is wrong either way.
            let Some(translations) =
                resolve(peer, &self.profiles, &self.rule_sets, &mut self.diags)
            else {
                continue;
            };
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
            for (i, c) in peer.comments.iter().enumerate() {
                if peer.outgoing.as_ref().is_some_and(|u| u.comment == i) {
                    // Only worth a comment when something did not come across.
                    if !translations.not_carried.is_empty() {
                        let _ = writeln!(toml, "# IOS: {}; not carried over:", comment_text(c));
                        for lost in &translations.not_carried {
                            let _ = writeln!(toml, "#   {}", comment_text(lost));
                        }
                    }
                    continue;
                }
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
            if !translations.called.is_empty() {
                let _ = writeln!(
                    toml,
                    "translate_called = {}",
                    rules_toml(&translations.called)
                );
            }
            if !translations.calling.is_empty() {
                let _ = writeln!(
                    toml,
                    "translate_calling = {}",
                    rules_toml(&translations.calling)
                );
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
        ("translation-profile", _) => match (word(1).as_deref(), neg) {
            (Some("outgoing"), true) => {
                if let Some(old) = peer.outgoing.take() {
                    peer.comments.remove(old.comment);
                }
            }
            (Some("outgoing"), false) => {
                let name = arg(args, 2, "the translation profile name")?;
                no_more(args, 3)?;
                // A second one replaces the first, as in IOS.
                if let Some(old) = peer.outgoing.take() {
                    peer.comments.remove(old.comment);
                }
                peer.outgoing = Some(ProfileUse {
                    name: name.text.to_string(),
                    line: line_no,
                    col: name.col,
                    comment: peer.comments.len(),
                });
                peer.comments.push(trimmed.to_string());
            }
            (Some("incoming"), false) => keep(peer, diags),
            _ => diags.ignored(line_no, trimmed),
        },
        ("answer-address" | "dtmf-relay" | "codec", false) => keep(peer, diags),
        // The description travels as a comment; it changes nothing, so no warning.
        ("description", false) => peer.comments.push(trimmed.to_string()),
        ("shutdown", _) => peer.shutdown = !neg,
        _ => diags.ignored(line_no, trimmed),
    }
    Ok(())
}

/// A word-by-word and slash-by-slash reader of one line, for `rule` lines,
/// whose patterns are not words.
struct Scan<'a> {
    line: &'a str,
    /// Byte offset of the next character.
    pos: usize,
}

impl<'a> Scan<'a> {
    fn col(&self) -> usize {
        self.line[..self.pos].chars().count() + 1
    }

    fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.rest().is_empty()
    }

    /// The next word and its column.
    fn word(&mut self) -> Option<(&'a str, usize)> {
        if self.at_end() {
            return None;
        }
        let col = self.col();
        let rest = self.rest();
        let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.pos += len;
        Some((&rest[..len], col))
    }

    /// `/TEXT/`: the text between the slashes (a backslash keeps the next
    /// character, a slash included) and the column of the opening slash.
    fn slashed(&mut self, what: &str) -> Result<(&'a str, usize), Fail> {
        if self.at_end() {
            return fail(self.col(), format!("{what} is missing"));
        }
        let col = self.col();
        let rest = self.rest();
        let Some(body) = rest.strip_prefix('/') else {
            let word = rest.split_whitespace().next().unwrap_or(rest);
            return fail(col, format!("{what} must be written /…/, not `{word}`"));
        };
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '/' => {
                    self.pos += 1 + i + 1;
                    return Ok((&body[..i], col));
                }
                _ => {}
            }
        }
        fail(col, format!("{what}: `/` is never closed"))
    }
}

/// `rule K /MATCH/ /REPLACE/ [type … | plan …]` or `rule K reject /MATCH/`.
fn rule(
    set: u32,
    diags: &mut Diags,
    line_no: usize,
    line: &str,
    trimmed: &str,
    toks: &[Tok],
) -> Result<(u32, RuleEntry), Fail> {
    let k_tok = arg(toks, 1, "the rule number")?;
    let k = match k_tok.text.parse::<u32>() {
        Ok(k) if k > 0 => k,
        _ => {
            return fail(
                k_tok.col,
                format!("rule number `{}` is not a number from 1", k_tok.text),
            );
        }
    };
    let mut scan = Scan {
        line,
        pos: k_tok.byte + k_tok.text.len(),
    };
    scan.skip_space();
    if !scan.rest().starts_with('/')
        && let Some((word, col)) = scan.word()
        && word.eq_ignore_ascii_case("reject")
    {
        scan.slashed("the pattern")?;
        if let Some((extra, col)) = scan.word() {
            return fail(col, format!("unexpected `{extra}`"));
        }
        diags.warn(
            line_no,
            col,
            format!(
                "voice translation-rule {set}: rule {k} skipped: reject rules are not \
                 supported, so the calls it rejects in IOS go through"
            ),
        );
        return Ok((k, RuleEntry::Reject(trimmed.to_string())));
    }
    // Not `reject`: read again from the rule number.
    scan.pos = k_tok.byte + k_tok.text.len();
    let (ios_match, match_col) = scan.slashed("the pattern")?;
    let (ios_replace, replace_col) = scan.slashed("the replacement")?;
    let pattern = ios_pattern(ios_match);
    let (replace, refs) = ios_replacement(ios_replace);
    let regex = match regex::Regex::new(&pattern) {
        Ok(r) => r,
        Err(e) => {
            // regex's message ends with a line saying what is wrong.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or("").trim();
            let why = why.trim_start_matches("error: ");
            return fail(
                match_col,
                format!(
                    "rule {k}: `/{ios_match}/` becomes the regex `{pattern}`, which is not valid: {why}"
                ),
            );
        }
    };
    let groups = regex.captures_len() - 1;
    if let Some(n) = refs.iter().copied().filter(|&n| n > groups).max() {
        diags.warn(
            line_no,
            replace_col,
            format!(
                "voice translation-rule {set}: rule {k}: `\\{n}` refers to a group the pattern \
                 does not have, so it adds nothing"
            ),
        );
    }
    let mut dropped = None;
    if let Some((word, col)) = scan.word() {
        if !(word.eq_ignore_ascii_case("type") || word.eq_ignore_ascii_case("plan")) {
            return fail(col, format!("unexpected `{word}`"));
        }
        let settings = format!("{word} {}", scan.rest().trim());
        diags.warn(
            line_no,
            col,
            format!(
                "voice translation-rule {set}: rule {k}: `{settings}` not imported: this \
                 switch does not set number types or plans"
            ),
        );
        dropped = Some(settings);
    }
    Ok((
        k,
        RuleEntry::Rewrite {
            pattern,
            replace,
            dropped,
        },
    ))
}

/// An IOS translation-rule pattern in the `regex` crate's syntax. IOS groups
/// with `\(…\)` and takes a bare `(` literally; `regex` the other way round.
/// Inside `[…]` both are literal in both, so classes are copied, with the few
/// characters that mean something in a `regex` class (`[`, `&`, `~`) escaped.
fn ios_pattern(ios: &str) -> String {
    let mut out = String::with_capacity(ios.len() + 4);
    let mut chars = ios.chars().peekable();
    let mut class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(g @ ('(' | ')')) if !class => out.push(g),
                // Only escaped so that it did not end the IOS pattern.
                Some('/') => out.push('/'),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '(' | ')' if !class => {
                out.push('\\');
                out.push(c);
            }
            '[' if !class => {
                class = true;
                out.push('[');
                if chars.next_if_eq(&'^').is_some() {
                    out.push('^');
                }
                // A `]` first in a class is a literal one.
                if chars.next_if_eq(&']').is_some() {
                    out.push_str("\\]");
                }
            }
            ']' if class => {
                class = false;
                out.push(']');
            }
            '[' | '&' | '~' if class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// An IOS replacement in the `regex` crate's syntax (`\1` → `${1}`, with braces
/// so that a digit after it stays a digit; a literal `$` → `$$`), and the group
/// numbers it refers to.
fn ios_replacement(ios: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(ios.len() + 4);
    let mut refs = Vec::new();
    let mut chars = ios.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let _ = write!(out, "${{{d}}}");
                    refs.push(d as usize - '0' as usize);
                }
                Some('$') => out.push_str("$$"),
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    (out, refs)
}

/// The rules of a peer's outgoing profile, or None (after saying why) when the
/// peer cannot be imported with them.
fn resolve(
    peer: &Peer,
    profiles: &BTreeMap<String, Profile>,
    sets: &BTreeMap<u32, RuleSet>,
    diags: &mut Diags,
) -> Option<Translations> {
    let mut out = Translations::default();
    let Some(used) = &peer.outgoing else {
        return Some(out);
    };
    let tag = peer.tag;
    let name = &used.name;
    let Some(profile) = profiles.get(name) else {
        diags.error(
            used.line,
            used.col,
            format!("dial peer {tag}: voice translation-profile `{name}` is not defined"),
        );
        return None;
    };
    if profile.broken {
        diags.warn(
            used.line,
            used.col,
            format!("dial peer {tag} left out: voice translation-profile `{name}` has an error"),
        );
        return None;
    }
    out.not_carried.extend(profile.other.values().cloned());
    let mut ok = true;
    for (which, set_use) in [("called", profile.called), ("calling", profile.calling)] {
        let Some(SetUse { set, line }) = set_use else {
            continue;
        };
        let Some(rules) = sets.get(&set) else {
            diags.error(
                used.line,
                used.col,
                format!(
                    "dial peer {tag}: voice translation-profile `{name}` translates the {which} \
                     number with voice translation-rule {set} (line {line}), which is not defined"
                ),
            );
            ok = false;
            continue;
        };
        if rules.broken {
            diags.warn(
                used.line,
                used.col,
                format!(
                    "dial peer {tag} left out: voice translation-rule {set} (the {which} number \
                     in profile `{name}`) has an error"
                ),
            );
            ok = false;
            continue;
        }
        let list = if which == "called" {
            &mut out.called
        } else {
            &mut out.calling
        };
        for (k, entry) in &rules.rules {
            let lost = match entry {
                RuleEntry::Rewrite {
                    pattern,
                    replace,
                    dropped,
                } => {
                    list.push((pattern.clone(), replace.clone()));
                    dropped
                        .as_ref()
                        .map(|d| format!("voice translation-rule {set}, rule {k}: {d}"))
                }
                RuleEntry::Reject(text) => Some(format!("voice translation-rule {set}: {text}")),
            };
            // A set used for both numbers is reported once.
            if let Some(lost) = lost.filter(|l| !out.not_carried.contains(l)) {
                out.not_carried.push(lost);
            }
        }
    }
    ok.then_some(out)
}

/// `[{ match = "…", replace = "…" }, …]`.
fn rules_toml(rules: &[(String, String)]) -> String {
    let items: Vec<String> = rules
        .iter()
        .map(|(m, r)| format!("{{ match = {}, replace = {} }}", quote(m), quote(r)))
        .collect();
    format!("[{}]", items.join(", "))
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
    use crate::digits::Translation;

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
!
voice translation-rule 1
 rule 1 /^81/ /0081/
!
voice translation-profile OUT
 translate called 1
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
translate_called = [{ match = \"^81\", replace = \"0081\" }]
options_keepalive = { interval = 30, down_interval = 10, fall = 3 }
";
        assert!(import.toml.ends_with(want), "{}", import.toml);
        let warnings = rendered(&import, Severity::Warning);
        assert_eq!(warnings.len(), 5, "{warnings:?}");
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

    /// The `(match, replace)` pairs of a peer's `translate_called` or
    /// `translate_calling`, as the TOML parser reads them back.
    fn translate_rules(peer: &toml::Table, key: &str) -> Vec<(String, String)> {
        peer.get(key)
            .and_then(toml::Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| {
                        let text = |k: &str| r[k].as_str().expect("a string").to_string();
                        (text("match"), text("replace"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rule sets and a profile, as IOS prints them, ahead of the peer.
    const TRANSLATION_BLOCKS: &str = "\
voice translation-rule 10
 rule 3 /^0/ /+44/
 rule 1 /^9\\(.*\\)$/ /\\1/
 rule 2 /^\\+\\(.*\\)/ /00\\1/
!
voice translation-rule 20
 rule 1 /^\\(1...\\)$/ /+44207946\\1/
!
voice translation-profile TO-PSTN
 translate called 10
 translate calling 20
!
";

    const PSTN_PEER: &str = "\
dial-peer voice 5 voip
 destination-pattern 9T
 session protocol sipv2
 session target ipv4:10.0.0.5
 translation-profile outgoing TO-PSTN
!
";

    #[test]
    fn an_outgoing_profile_is_inlined_in_rule_order() {
        let import = import_ios(&format!("{TRANSLATION_BLOCKS}{PSTN_PEER}"));
        // Neither the blocks nor the peer's line leave anything to report.
        assert!(import.diagnostics.is_empty(), "{:?}", import.diagnostics);
        assert_eq!(
            import.toml,
            r#"# generated by softswitch gateway import-ios

[[dial_peer]]
tag = 5
destination_pattern = "9T"
session_target = "ipv4:10.0.0.5"
translate_called = [{ match = "^9(.*)$", replace = "${1}" }, { match = "^\\+(.*)", replace = "00${1}" }, { match = "^0", replace = "+44" }]
translate_calling = [{ match = "^(1...)$", replace = "+44207946${1}" }]
"#
        );
        let peer = &peers(&import)[0];
        let called = translate_rules(peer, "translate_called");
        assert_eq!(
            called,
            [
                ("^9(.*)$".to_string(), "${1}".to_string()),
                ("^\\+(.*)".to_string(), "00${1}".to_string()),
                ("^0".to_string(), "+44".to_string()),
            ]
        );
        let calling = translate_rules(peer, "translate_calling");
        assert_eq!(
            calling,
            [("^(1...)$".to_string(), "+44207946${1}".to_string())]
        );

        // The rules behave as IOS's do: the first that matches, and only it.
        let called = Translation::compile(&called).unwrap();
        assert_eq!(called.apply("902079460123").as_deref(), Some("02079460123"));
        assert_eq!(called.apply("+15551234").as_deref(), Some("0015551234"));
        assert_eq!(
            called.apply("02079460123").as_deref(),
            Some("+442079460123")
        );
        assert_eq!(called.apply("12345"), None);
        let calling = Translation::compile(&calling).unwrap();
        assert_eq!(calling.apply("1234").as_deref(), Some("+442079461234"));
        assert_eq!(calling.apply("12345"), None);
    }

    #[test]
    fn a_profile_may_come_after_the_peer() {
        let before = import_ios(&format!("{TRANSLATION_BLOCKS}{PSTN_PEER}"));
        let after = import_ios(&format!("{PSTN_PEER}{TRANSLATION_BLOCKS}"));
        assert!(after.diagnostics.is_empty(), "{:?}", after.diagnostics);
        assert_eq!(after.toml, before.toml);

        // The profile between the peer and its rule sets works as well.
        let (sets, profile) = TRANSLATION_BLOCKS.split_at(
            TRANSLATION_BLOCKS
                .find("voice translation-profile")
                .unwrap(),
        );
        let middle = import_ios(&format!("{profile}{PSTN_PEER}{sets}"));
        assert!(middle.diagnostics.is_empty(), "{:?}", middle.diagnostics);
        assert_eq!(middle.toml, before.toml);
    }

    #[test]
    fn ios_groups_and_references_become_regex_ones() {
        let cases = [
            // (IOS pattern, regex)
            ("^9\\(.*\\)", "^9(.*)"),
            ("^\\(5\\)\\(.*\\)", "^(5)(.*)"),
            // A bare parenthesis is a literal in IOS.
            ("^(0)\\(.*\\)", "^\\(0\\)(.*)"),
            ("^26\\(....\\)$", "^26(....)$"),
            ("\\.\\-[0-9]+.?", "\\.\\-[0-9]+.?"),
            ("[()]", "[()]"),
            ("[^]0]", "[^\\]0]"),
            ("[[]", "[\\[]"),
            ("a\\/b", "a/b"),
        ];
        for (ios, want) in cases {
            assert_eq!(ios_pattern(ios), want, "{ios}");
            assert!(regex::Regex::new(want).is_ok(), "{want}");
        }
        for (ios, want, refs) in [
            ("\\1", "${1}", vec![1]),
            // A digit after a reference stays a digit.
            ("\\10", "${1}0", vec![1]),
            ("7\\2\\1", "7${2}${1}", vec![2, 1]),
            ("$", "$$", vec![]),
            ("\\$9", "$$9", vec![]),
            ("", "", vec![]),
        ] {
            assert_eq!(ios_replacement(ios), (want.to_string(), refs), "{ios}");
        }

        // And they rewrite numbers the way the IOS rules do.
        let rule = |ios_match: &str, ios_replace: &str, number: &str| {
            let pair = (ios_pattern(ios_match), ios_replacement(ios_replace).0);
            Translation::compile(&[pair]).unwrap().apply(number)
        };
        assert_eq!(rule("^9\\(.*\\)", "\\1", "9123").as_deref(), Some("123"));
        assert_eq!(rule("^\\(..\\)", "\\10", "1234").as_deref(), Some("12034"));
        assert_eq!(
            rule("^(0)\\(.*\\)", "0\\1", "(0)2071").as_deref(),
            Some("02071")
        );
        assert_eq!(rule("^(0)", "0", "02071"), None, "a literal parenthesis");
        assert_eq!(rule("^00", "$", "0012").as_deref(), Some("$12"));
        // Only the matched part is replaced, as in IOS.
        assert_eq!(rule("123", "456", "61239").as_deref(), Some("64569"));
    }

    #[test]
    fn rules_convert_through_the_import() {
        let text = "\
voice translation-rule 1
 rule 1 /^9\\(.*\\)/ /\\1/
 rule 2 /^00/ /$/
!
voice translation-profile OUT
 translate called 1
!
dial-peer voice 1 voip
 destination-pattern 2...
 session protocol sipv2
 session target ipv4:10.0.0.1
 translation-profile outgoing OUT
";
        let import = import_ios(text);
        assert!(import.diagnostics.is_empty(), "{:?}", import.diagnostics);
        assert!(
            import.toml.contains(
                "translate_called = [{ match = \"^9(.*)\", replace = \"${1}\" }, \
                           { match = \"^00\", replace = \"$$\" }]\n"
            ),
            "{}",
            import.toml
        );
        let rules = translate_rules(&peers(&import)[0], "translate_called");
        let t = Translation::compile(&rules).unwrap();
        assert_eq!(t.apply("9555").as_deref(), Some("555"));
        assert_eq!(t.apply("0044").as_deref(), Some("$44"));
    }

    #[test]
    fn what_has_no_equivalent_is_warned_and_kept_as_a_comment() {
        let text = "\
voice translation-rule 1
 rule 1 reject /^900/
 rule 2 /^0/ /+44/ type any international plan any isdn
!
voice translation-profile OUT
 translate called 1
 translate redirect-called 1
!
dial-peer voice 1 voip
 destination-pattern 0T
 session protocol sipv2
 session target ipv4:10.0.0.1
 translation-profile outgoing OUT
";
        let import = import_ios(text);
        assert!(!import.has_errors(), "{:?}", import.diagnostics);
        assert_eq!(
            rendered(&import, Severity::Warning),
            [
                "r1.cfg:2:9: warning: voice translation-rule 1: rule 1 skipped: reject rules \
                 are not supported, so the calls it rejects in IOS go through",
                "r1.cfg:3:20: warning: voice translation-rule 1: rule 2: `type any \
                 international plan any isdn` not imported: this switch does not set number \
                 types or plans",
                "r1.cfg:7:12: warning: voice translation-profile OUT: `translate \
                 redirect-called 1` not imported: this switch translates only the called and \
                 calling numbers",
            ]
        );
        assert!(rendered(&import, Severity::Ignored).is_empty());
        let want = "\
# IOS: translation-profile outgoing OUT; not carried over:
#   translate redirect-called 1
#   voice translation-rule 1: rule 1 reject /^900/
#   voice translation-rule 1, rule 2: type any international plan any isdn
[[dial_peer]]
tag = 1
destination_pattern = \"0T\"
session_target = \"ipv4:10.0.0.1\"
translate_called = [{ match = \"^0\", replace = \"+44\" }]
";
        assert!(import.toml.ends_with(want), "{}", import.toml);
        assert_eq!(peers(&import).len(), 1);

        // An incoming profile is still only a comment on the peer.
        let import = import_ios(&text.replace("outgoing OUT", "incoming OUT"));
        assert!(
            rendered(&import, Severity::Warning).contains(
                &"r1.cfg:13:2: warning: dial peer 1: `translation-profile incoming OUT` kept as \
                  a comment: this switch does not apply it per peer"
                    .to_string()
            ),
            "{:?}",
            import.diagnostics
        );
        assert!(
            import
                .toml
                .contains("# IOS: translation-profile incoming OUT\n")
        );
        assert!(!import.toml.contains("translate_called"));
    }

    #[test]
    fn an_unknown_profile_or_rule_set_is_an_error_at_the_name() {
        let peer = "\
dial-peer voice 1 voip
 destination-pattern 2...
 session protocol sipv2
 session target ipv4:10.0.0.1
 translation-profile outgoing NOPE
";
        let import = import_ios(peer);
        assert_eq!(
            rendered(&import, Severity::Error),
            ["r1.cfg:5:31: error: dial peer 1: voice translation-profile `NOPE` is not defined"]
        );
        assert_eq!(import.peers, 0);
        assert!(rendered(&import, Severity::Warning).is_empty());

        let import = import_ios(&format!(
            "{peer}!\nvoice translation-profile NOPE\n translate called 1\n translate calling 7\n"
        ));
        assert_eq!(
            rendered(&import, Severity::Error),
            [
                "r1.cfg:5:31: error: dial peer 1: voice translation-profile `NOPE` translates \
                 the called number with voice translation-rule 1 (line 8), which is not defined",
                "r1.cfg:5:31: error: dial peer 1: voice translation-profile `NOPE` translates \
                 the calling number with voice translation-rule 7 (line 9), which is not defined",
            ]
        );
        assert_eq!(import.peers, 0);
        // Profile names are case-sensitive, as in IOS.
        let import = import_ios(&format!("{peer}!\nvoice translation-profile nope\n"));
        assert_eq!(rendered(&import, Severity::Error).len(), 1);
    }

    #[test]
    fn an_invalid_rule_is_an_error_at_its_pattern() {
        let text = "\
voice translation-rule 1
 rule 1 /^9\\(.*/ /\\1/
!
voice translation-profile OUT
 translate called 1
!
dial-peer voice 1 voip
 destination-pattern 2...
 session protocol sipv2
 session target ipv4:10.0.0.1
 translation-profile outgoing OUT
";
        let import = import_ios(text);
        let errors = rendered(&import, Severity::Error);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "r1.cfg:2:9: error: voice translation-rule 1: rule 1: `/^9\\(.*/` becomes the \
                 regex `^9(.*`, which is not valid: "
            ),
            "{}",
            errors[0]
        );
        assert!(errors[0].ends_with("unclosed group"), "{}", errors[0]);
        // The peer that uses the rule is left out, and says why.
        assert_eq!(import.peers, 0);
        assert_eq!(
            rendered(&import, Severity::Warning),
            [
                "r1.cfg:11:31: warning: dial peer 1 left out: voice translation-rule 1 (the \
                 called number in profile `OUT`) has an error"
            ]
        );

        // A bare parenthesis of IOS is a literal, so `(` alone is fine, while an
        // IOS group that is closed but never opened is not.
        for (rule, col, needle) in [
            (" rule 1 /^9(/ //", 0, ""),
            (" rule 1 /^9\\)/ //", 9, "unopened group"),
            (" rule 1 /^9[/ //", 9, "unclosed character class"),
            (" rule 1 /^9/", 13, "the replacement is missing"),
            (
                " rule 1 /^9/ /1",
                14,
                "the replacement: `/` is never closed",
            ),
            (
                " rule 1 ^9 /1/",
                9,
                "the pattern must be written /…/, not `^9`",
            ),
            (" rule 1 /^9/ /1/ now", 18, "unexpected `now`"),
            (
                " rule 0 /^9/ /1/",
                7,
                "rule number `0` is not a number from 1",
            ),
            (" rule 1 reject /^9/ /1/", 21, "unexpected `/1/`"),
        ] {
            let import = import_ios(&format!("voice translation-rule 1\n{rule}\n"));
            let errors: Vec<_> = import
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            if col == 0 {
                assert!(errors.is_empty(), "{rule}: {errors:?}");
                continue;
            }
            assert_eq!(errors.len(), 1, "{rule}: {:?}", import.diagnostics);
            assert_eq!((errors[0].line, errors[0].col), (2, col), "{rule}");
            assert!(
                errors[0].message.contains(needle),
                "{rule}: {}",
                errors[0].message
            );
        }
    }

    #[test]
    fn a_reference_to_a_missing_group_is_warned() {
        let import = import_ios("voice translation-rule 1\n rule 1 /^9\\(.*\\)/ /\\1\\2/\n");
        assert_eq!(
            rendered(&import, Severity::Warning),
            [
                "r1.cfg:2:20: warning: voice translation-rule 1: rule 1: `\\2` refers to a \
                 group the pattern does not have, so it adds nothing"
            ]
        );
    }

    #[test]
    fn other_lines_in_translation_blocks_are_ignored_one_by_one() {
        let text = "\
voice translation-rule 1
 rule 1 /^9/ //
 frobnicate
!
voice translation-profile OUT
 translate called 1
 description x
!
voice service voip
 allow-connections sip to sip
";
        let import = import_ios(text);
        assert_eq!(
            import
                .diagnostics
                .iter()
                .map(|d| d.render("r1.cfg"))
                .collect::<Vec<_>>(),
            [
                "r1.cfg:3: ignored: frobnicate",
                "r1.cfg:7: ignored: description x",
                "r1.cfg:9: ignored: voice service voip",
            ]
        );
    }
}
