//! Extension names and patterns (dialplan.md §4) and Asterisk's ordering of them
//! (§5.1, `main/pbx.c` `ext_cmp()`).

use std::cmp::Ordering;

/// A set of bytes, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CharSet([u64; 4]);

impl CharSet {
    pub fn single(c: u8) -> Self {
        let mut s = CharSet::default();
        s.insert(c);
        s
    }
    pub fn range(lo: u8, hi: u8) -> Self {
        let mut s = CharSet::default();
        for c in lo..=hi {
            s.insert(c);
        }
        s
    }
    pub fn insert(&mut self, c: u8) {
        self.0[(c >> 6) as usize] |= 1 << (c & 63);
    }
    pub fn contains(&self, c: u8) -> bool {
        self.0[(c >> 6) as usize] & (1 << (c & 63)) != 0
    }
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
    pub fn lowest(&self) -> u8 {
        (0..=255u8).find(|&c| self.contains(c)).unwrap_or(0)
    }
    /// Single member, if the set has exactly one.
    pub fn only(&self) -> Option<u8> {
        (self.len() == 1).then(|| self.lowest())
    }
}

/// One position of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Elem {
    /// A literal character, `X`/`Z`/`N` or a `[...]` set.
    Set(CharSet),
    /// `.`: one or more of anything; the rest of the pattern is ignored.
    Dot,
    /// `!`: zero or more of anything; the rest of the pattern is ignored.
    Bang,
}

/// A compiled `_` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub elems: Vec<Elem>,
    /// A `[` without `]`: the pattern never matches and sorts last at that position.
    pub broken: bool,
}

/// Problems the linter reports for a pattern (Asterisk accepts them silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternIssue {
    Unterminated { offset: usize },
    EmptySet { offset: usize },
    ReversedRange { offset: usize },
}

impl Pattern {
    /// Compiles the text after the leading `_` (§4.2). `-` outside sets is decoration.
    pub fn compile(text: &str) -> (Pattern, Vec<PatternIssue>) {
        let b = text.as_bytes();
        let mut elems = Vec::new();
        let mut issues = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b'-' => {}
                b'X' | b'x' => elems.push(Elem::Set(CharSet::range(b'0', b'9'))),
                b'Z' | b'z' => elems.push(Elem::Set(CharSet::range(b'1', b'9'))),
                b'N' | b'n' => elems.push(Elem::Set(CharSet::range(b'2', b'9'))),
                b'.' => {
                    elems.push(Elem::Dot);
                    break;
                }
                b'!' => {
                    elems.push(Elem::Bang);
                    break;
                }
                b'[' => {
                    let Some(close) = b[i + 1..].iter().position(|&x| x == b']') else {
                        issues.push(PatternIssue::Unterminated { offset: i });
                        return (
                            Pattern {
                                elems,
                                broken: true,
                            },
                            issues,
                        );
                    };
                    let inner = &b[i + 1..i + 1 + close];
                    let (set, reversed) = parse_set(inner);
                    if reversed {
                        issues.push(PatternIssue::ReversedRange { offset: i });
                    }
                    if set.is_empty() {
                        // §4.2: an empty set takes up no position.
                        if !reversed {
                            issues.push(PatternIssue::EmptySet { offset: i });
                        }
                    } else {
                        elems.push(Elem::Set(set));
                    }
                    i += close + 1;
                }
                _ => elems.push(Elem::Set(CharSet::single(c))),
            }
            i += 1;
        }
        (
            Pattern {
                elems,
                broken: false,
            },
            issues,
        )
    }

    /// Exact match of a dialed string whose dashes were already removed (§4.3).
    pub fn matches(&self, d: &[u8]) -> bool {
        self.classify(d).exact
    }

    /// What this pattern says about dialed string `d` (dashes removed): whether it
    /// matches now, and whether it could match if more digits came (§6.5).
    pub fn classify(&self, d: &[u8]) -> Fit {
        if self.broken {
            return Fit::NONE;
        }
        for (i, e) in self.elems.iter().enumerate() {
            if i == d.len() {
                // Dialed string exhausted with pattern left over.
                return match e {
                    Elem::Bang => Fit {
                        exact: true,
                        more: false,
                    },
                    _ => Fit {
                        exact: false,
                        more: true,
                    },
                };
            }
            match e {
                Elem::Dot => {
                    return Fit {
                        exact: true,
                        more: true,
                    };
                }
                // `!` stops digit collection (§4.3, §6.5).
                Elem::Bang => {
                    return Fit {
                        exact: true,
                        more: false,
                    };
                }
                Elem::Set(s) => {
                    if !s.contains(d[i]) {
                        return Fit::NONE;
                    }
                }
            }
        }
        Fit {
            exact: self.elems.len() == d.len(),
            more: false,
        }
    }

    /// Asterisk's per-position comparison (§5.1 point 3).
    pub fn cmp_order(&self, other: &Pattern) -> Ordering {
        let n = self.elems.len().max(other.elems.len()) + 1;
        for i in 0..n {
            let a = self.weight_at(i);
            let b = other.weight_at(i);
            let ord = a.0.cmp(&b.0).then_with(|| tie_break(&a.1, &b.1));
            if ord != Ordering::Equal {
                return ord;
            }
            if a.0 >= W_END {
                return Ordering::Equal;
            }
        }
        Ordering::Equal
    }

    fn weight_at(&self, i: usize) -> (u32, CharSet) {
        match self.elems.get(i) {
            Some(Elem::Set(s)) => (0x100 * s.len() + s.lowest() as u32, *s),
            Some(Elem::Dot) => (0x18000, CharSet::default()),
            Some(Elem::Bang) => (0x28000, CharSet::default()),
            None if i > 0 && matches!(self.elems.get(i - 1), Some(Elem::Dot | Elem::Bang)) => {
                (W_END, CharSet::default())
            }
            None if self.broken => (0x40000, CharSet::default()),
            None => (W_END, CharSet::default()),
        }
    }
}

const W_END: u32 = 0x30000;

/// Equal size and equal lowest member: at the first character only one set contains,
/// the set containing it sorts first (§5.1; `[12]` before `[13]`).
fn tie_break(a: &CharSet, b: &CharSet) -> Ordering {
    for c in 0..=255u8 {
        match (a.contains(c), b.contains(c)) {
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
    }
    Ordering::Equal
}

fn parse_set(inner: &[u8]) -> (CharSet, bool) {
    let mut set = CharSet::default();
    let mut reversed = false;
    let mut i = 0;
    while i < inner.len() {
        if i + 2 < inner.len() && inner[i + 1] == b'-' {
            let (lo, hi) = (inner[i], inner[i + 2]);
            if lo > hi {
                reversed = true;
            } else {
                for c in lo..=hi {
                    set.insert(c);
                }
            }
            i += 3;
        } else {
            set.insert(inner[i]);
            i += 1;
        }
    }
    (set, reversed)
}

/// The result of testing a dialed string against a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// Matches the string as dialed.
    pub exact: bool,
    /// Could match a longer string that starts with it ("match more").
    pub more: bool,
}

impl Fit {
    pub const NONE: Fit = Fit {
        exact: false,
        more: false,
    };
}

/// An extension name or caller-id match: a literal or a `_` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NameMatcher {
    /// Literal with every `-` removed (§4.1: dash is decoration).
    Literal(String),
    Pattern {
        raw: String,
        pattern: Pattern,
    },
}

impl NameMatcher {
    pub fn new(name: &str) -> (NameMatcher, Vec<PatternIssue>) {
        match name.strip_prefix('_') {
            Some(rest) => {
                let (pattern, issues) = Pattern::compile(rest);
                (
                    NameMatcher::Pattern {
                        raw: name.to_string(),
                        pattern,
                    },
                    issues,
                )
            }
            None => (NameMatcher::Literal(name.replace('-', "")), Vec::new()),
        }
    }

    pub fn is_pattern(&self) -> bool {
        matches!(self, NameMatcher::Pattern { .. })
    }

    /// Tests `dialed` (dashes not yet removed).
    pub fn fit(&self, dialed: &str) -> Fit {
        let d = strip_dashes(dialed);
        match self {
            NameMatcher::Literal(l) => Fit {
                exact: *l == d,
                more: l.len() > d.len() && l.starts_with(d.as_str()),
            },
            NameMatcher::Pattern { raw, pattern } => {
                // §4.4: a dialed string that spells the pattern itself matches it.
                if dialed.starts_with('_') && dialed == raw {
                    return Fit {
                        exact: true,
                        more: false,
                    };
                }
                pattern.classify(d.as_bytes())
            }
        }
    }

    pub fn matches(&self, dialed: &str) -> bool {
        self.fit(dialed).exact
    }

    /// §5.1: literals before patterns; literals by bytes without dashes; patterns by
    /// position weights.
    pub fn cmp_order(&self, other: &NameMatcher) -> Ordering {
        match (self, other) {
            (NameMatcher::Literal(a), NameMatcher::Literal(b)) => a.as_bytes().cmp(b.as_bytes()),
            (NameMatcher::Literal(_), NameMatcher::Pattern { .. }) => Ordering::Less,
            (NameMatcher::Pattern { .. }, NameMatcher::Literal(_)) => Ordering::Greater,
            (NameMatcher::Pattern { pattern: a, .. }, NameMatcher::Pattern { pattern: b, .. }) => {
                a.cmp_order(b)
            }
        }
    }
}

/// Removes `-` (decoration in dialed strings, §4.3).
pub fn strip_dashes(s: &str) -> String {
    if s.contains('-') {
        s.replace('-', "")
    } else {
        s.to_string()
    }
}

/// Caller-id match of an extension (§4.5).
pub fn cid_matches(cid: &NameMatcher, caller: Option<&str>) -> bool {
    match caller.filter(|c| !c.is_empty()) {
        None => matches!(cid, NameMatcher::Literal(l) if l.is_empty()),
        Some(num) => match cid {
            NameMatcher::Literal(l) if l.is_empty() => false,
            m => m.matches(num),
        },
    }
}

/// Full extension order: name first, then a caller-id variant before the plain
/// extension, variants among themselves by their caller-id text (§5.1 point 5).
pub fn cmp_extension(
    a: (&NameMatcher, Option<&NameMatcher>),
    b: (&NameMatcher, Option<&NameMatcher>),
) -> Ordering {
    a.0.cmp_order(b.0).then_with(|| match (a.1, b.1) {
        (Some(x), Some(y)) => x.cmp_order(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    })
}

/// Normalises the caller-id part of `exten => NAME/CID` (§3.3 step 2): spaces and
/// parentheses go; `-` goes outside `[...]`; `.` goes unless it is the last character.
pub fn normalize_cid(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::new();
    let mut in_set = false;
    for (i, &c) in chars.iter().enumerate() {
        match c {
            ' ' | '\t' | '(' | ')' => {}
            '[' => {
                in_set = true;
                out.push(c);
            }
            ']' => {
                in_set = false;
                out.push(c);
            }
            '-' if !in_set => {}
            '.' if i + 1 != chars.len() => {}
            _ => out.push(c),
        }
    }
    out
}

/// Removes whitespace from an extension name outside `[...]` (§3.3 step 5).
pub fn strip_name_whitespace(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_set = false;
    for c in raw.chars() {
        match c {
            '[' => in_set = true,
            ']' => in_set = false,
            c if c.is_whitespace() && !in_set => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> NameMatcher {
        NameMatcher::new(s).0
    }

    #[test]
    fn exact_matching_rules() {
        assert!(!m("_1.").matches("1"));
        assert!(m("_1!").matches("1"));
        assert!(m("_1XXX").matches("1234"));
        assert!(!m("_1XXX").matches("123"));
        assert!(!m("_1XXX").matches("12345"));
        assert!(!m("_X.").matches("s"));
        assert!(m("_.").matches("h"));
        assert!(m("_NXX-XXXX").matches("555-1234"));
        assert!(m("555-1234").matches("5551234"));
        assert!(!m("_[12").matches("1"));
        assert!(m("_[]1").matches("1"));
        assert!(m("_[-a]").matches("a"));
    }

    #[test]
    fn match_more() {
        assert!(m("_1.").fit("1").more);
        assert!(!m("_1!").fit("1").more);
        assert!(m("1234").fit("12").more);
        assert!(m("_X.").fit("12").more);
    }

    #[test]
    fn ordering() {
        assert_eq!(m("_12.").cmp_order(&m("_1XXX")), Ordering::Less);
        assert_eq!(m("_X!").cmp_order(&m("_X")), Ordering::Less);
        assert_eq!(m("_1X").cmp_order(&m("_1[0-9]")), Ordering::Equal);
        assert_eq!(m("_[12]X").cmp_order(&m("_[13]X")), Ordering::Less);
        assert_eq!(m("_[0-9]").cmp_order(&m("_[02-9a]")), Ordering::Less);
        assert_eq!(m("_1.").cmp_order(&m("_1!")), Ordering::Less);
        assert_eq!(m("1234").cmp_order(&m("_X.")), Ordering::Less);
    }

    #[test]
    fn cid_normalisation() {
        assert_eq!(normalize_cid("(555) 123-4567"), "5551234567");
        assert_eq!(normalize_cid("_555[0-5]."), "_555[0-5].");
        assert_eq!(normalize_cid("1.2"), "12");
        assert_eq!(strip_name_whitespace("1 0 0 "), "100");
        assert_eq!(strip_name_whitespace("_[1 2]X"), "_[1 2]X");
    }

    #[test]
    fn cid_empty_rules() {
        let empty = m("");
        assert!(cid_matches(&empty, None));
        assert!(cid_matches(&empty, Some("")));
        assert!(!cid_matches(&empty, Some("100")));
        assert!(!cid_matches(&m("100"), None));
        assert!(cid_matches(&m("_1XX"), Some("100")));
    }
}
