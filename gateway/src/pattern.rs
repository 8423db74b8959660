//! Cisco IOS `destination-pattern` syntax: parsing, matching against a called
//! number, and the specificity used to rank matching peers.
//!
//! Grammar (IOS wildcards): digits, `*` and `#` are literal; a leading `+` is a
//! literal plus; `.` is any one digit (or `*`); `[…]` is one of a set, with `a-b`
//! ranges and a leading `^` for "none of"; `(…)` groups; `?` makes the previous
//! digit or group optional, `%` repeats it zero or more times, `+` (not first)
//! one or more times (at most 32, as in IOS); `T` at the end takes 0–32 more
//! digits; `$` at the end forbids any; a leading `^` is accepted (matching is
//! anchored anyway); `\` escapes; `,` (a dialling pause) is ignored.
//!
//! Matching follows IOS on an en-bloc SIP number: from the first digit, and by
//! variable length unless the pattern ends in `$`: `22.` matches `221` and also
//! `2217`, whose extra digit travels on. Written here because no crate speaks
//! this dialect; a regex engine would need a translation layer as large as this.

use std::cmp::Ordering;
use std::fmt;

/// Repeats a quantifier allows at most.
const MAX_REPEAT: usize = 32;
/// Candidates of `.`: ten digits and `*`.
const ANY_SIZE: u16 = 11;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination-pattern `{pattern}`, character {at}: {message}")]
pub struct PatternError {
    pub pattern: String,
    /// 1-based character position.
    pub at: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Lit(u8),
    Any,
    Set(Vec<u8>),
    Group(Vec<Elem>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Elem {
    atom: Atom,
    min: usize,
    max: usize,
}

/// A parsed destination-pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    elems: Vec<Elem>,
    /// Ends in `$`: the number must end where the pattern does.
    exact: bool,
    /// Contains `T`, `%` or `+`: the pattern itself has no fixed length.
    open: bool,
}

/// How a pattern matched one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Digits of the number the pattern itself covered.
    pub consumed: usize,
    /// Per covered digit, how many digits the pattern allowed there (1 for a
    /// literal, 11 for `.`): the specificity, compared position by position.
    pub sizes: Vec<u16>,
    /// The pattern covered the whole number (no extra digits travel on).
    pub whole: bool,
    /// The pattern has `T`, `%` or `+`.
    pub open: bool,
}

impl Match {
    /// Literal digits matched: IOS's "longest match".
    pub fn literals(&self) -> usize {
        self.sizes.iter().filter(|s| **s == 1).count()
    }

    /// The specificity order of the gateway reference (§A.4): more literal
    /// digits; then the smaller candidate set at the first position where the
    /// two differ; then covering the whole number; then no open quantifier.
    /// `Less` means `self` is more specific.
    pub fn rank(&self, other: &Match) -> Ordering {
        other
            .literals()
            .cmp(&self.literals())
            .then_with(|| {
                for (a, b) in self.sizes.iter().zip(&other.sizes) {
                    if a != b {
                        return a.cmp(b);
                    }
                }
                other.sizes.len().cmp(&self.sizes.len())
            })
            .then_with(|| other.whole.cmp(&self.whole))
            .then_with(|| self.open.cmp(&other.open))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = text.chars().collect();
        let err = |at: usize, message: &str| PatternError {
            pattern: text.to_string(),
            at: at + 1,
            message: message.to_string(),
        };
        if chars.is_empty() {
            return Err(err(0, "the pattern is empty"));
        }
        let mut at = 0;
        if chars[0] == '^' {
            at = 1;
        }
        let mut stack: Vec<Vec<Elem>> = vec![Vec::new()];
        let mut exact = false;
        let mut open = false;
        while at < chars.len() {
            let c = chars[at];
            let depth = stack.len();
            let top = stack.last_mut().expect("never empty");
            match c {
                '0'..='9' | '*' | '#' => top.push(one(Atom::Lit(c as u8))),
                '+' if top.is_empty() && depth == 1 => top.push(one(Atom::Lit(b'+'))),
                '.' => top.push(one(Atom::Any)),
                ',' => {}
                '\\' => {
                    at += 1;
                    match chars.get(at) {
                        Some(&e) if e.is_ascii() => top.push(one(Atom::Lit(e as u8))),
                        _ => return Err(err(at, "`\\` must escape a character")),
                    }
                }
                '[' => {
                    let close = chars[at..]
                        .iter()
                        .position(|&x| x == ']')
                        .map(|p| at + p)
                        .ok_or_else(|| err(at, "`[` is never closed"))?;
                    let set = parse_set(&chars[at + 1..close]).map_err(|m| err(at, &m))?;
                    top.push(one(Atom::Set(set)));
                    at = close;
                }
                '(' => stack.push(Vec::new()),
                ')' => {
                    if stack.len() == 1 {
                        return Err(err(at, "`)` without `(`"));
                    }
                    let group = stack.pop().expect("checked");
                    if group.is_empty() {
                        return Err(err(at, "an empty group"));
                    }
                    stack
                        .last_mut()
                        .expect("never empty")
                        .push(one(Atom::Group(group)));
                }
                '?' | '%' | '+' => {
                    let Some(last) = top.last_mut() else {
                        return Err(err(at, &format!("`{c}` needs a digit or group before it")));
                    };
                    if (last.min, last.max) != (1, 1) {
                        return Err(err(at, &format!("`{c}` follows another repeat")));
                    }
                    (last.min, last.max) = match c {
                        '?' => (0, 1),
                        '%' => (0, MAX_REPEAT),
                        _ => (1, MAX_REPEAT),
                    };
                    open |= c != '?';
                }
                'T' | 't' => {
                    if at + 1 != chars.len() || depth != 1 {
                        return Err(err(at, "`T` may only end the pattern"));
                    }
                    top.push(Elem {
                        atom: Atom::Any,
                        min: 0,
                        max: MAX_REPEAT,
                    });
                    open = true;
                }
                '$' => {
                    if at + 1 != chars.len() || depth != 1 {
                        return Err(err(at, "`$` may only end the pattern"));
                    }
                    exact = true;
                }
                other => {
                    return Err(err(
                        at,
                        &format!("`{other}` is not a destination-pattern character"),
                    ));
                }
            }
            at += 1;
        }
        if stack.len() != 1 {
            return Err(err(chars.len() - 1, "`(` is never closed"));
        }
        let elems = stack.pop().expect("one");
        if elems.is_empty() {
            return Err(err(0, "the pattern matches nothing"));
        }
        Ok(Pattern {
            text: text.to_string(),
            elems,
            exact,
            open,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The literal digits every number it matches starts with (for indexing).
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for e in &self.elems {
            match (&e.atom, e.min, e.max) {
                (Atom::Lit(b), 1, 1) => out.push(*b as char),
                _ => break,
            }
        }
        out
    }

    /// How the pattern matches `number` (digits, `*`, `#`, a leading `+`), or
    /// None. Among the ways it could, the one covering the most digits.
    pub fn matches(&self, number: &str) -> Option<Match> {
        let n = number.as_bytes();
        let mut best: Option<(usize, Vec<u16>)> = None;
        let mut sizes = Vec::new();
        walk(&self.elems, 0, n, &mut sizes, &mut |end, sizes| {
            if self.exact && end != n.len() {
                return;
            }
            if best.as_ref().is_none_or(|(e, _)| end > *e) {
                best = Some((end, sizes.to_vec()));
            }
        });
        best.map(|(consumed, sizes)| Match {
            whole: consumed == n.len(),
            consumed,
            sizes,
            open: self.open,
        })
    }
}

fn one(atom: Atom) -> Elem {
    Elem {
        atom,
        min: 1,
        max: 1,
    }
}

fn parse_set(body: &[char]) -> Result<Vec<u8>, String> {
    let (negate, body) = match body.first() {
        Some('^') => (true, &body[1..]),
        _ => (false, body),
    };
    if body.is_empty() {
        return Err("an empty `[ ]` set".into());
    }
    let mut set = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if !(c.is_ascii_digit() || c == '*' || c == '#') {
            return Err(format!("`{c}` cannot be in a `[ ]` set"));
        }
        if body.get(i + 1) == Some(&'-') && i + 2 < body.len() {
            let hi = body[i + 2];
            if !c.is_ascii_digit() || !hi.is_ascii_digit() || hi < c {
                return Err(format!("`{c}-{hi}` is not a range of digits"));
            }
            set.extend((c as u8)..=(hi as u8));
            i += 3;
        } else {
            set.push(c as u8);
            i += 1;
        }
    }
    if negate {
        set = b"0123456789*#"
            .iter()
            .copied()
            .filter(|b| !set.contains(b))
            .collect();
    }
    set.sort_unstable();
    set.dedup();
    Ok(set)
}

/// Every way `elems` can cover `n` from position `at`: calls `found` with the end
/// position and the candidate-set size of each covered digit.
fn walk(
    elems: &[Elem],
    at: usize,
    n: &[u8],
    sizes: &mut Vec<u16>,
    found: &mut dyn FnMut(usize, &[u16]),
) {
    let Some((first, rest)) = elems.split_first() else {
        found(at, sizes);
        return;
    };
    repeat(first, 0, at, n, sizes, &mut |end, sizes| {
        walk(rest, end, n, sizes, found)
    });
}

/// `elem` repeated `done` times so far, from `at`.
fn repeat(
    elem: &Elem,
    done: usize,
    at: usize,
    n: &[u8],
    sizes: &mut Vec<u16>,
    then: &mut dyn FnMut(usize, &mut Vec<u16>),
) {
    if done >= elem.min {
        then(at, sizes);
    }
    if done == elem.max {
        return;
    }
    match &elem.atom {
        Atom::Group(inner) => {
            let mut ends = Vec::new();
            walk(inner, at, n, sizes, &mut |end, s| {
                ends.push((end, s.to_vec()))
            });
            for (end, s) in ends {
                // A group that covers nothing would repeat forever.
                if end > at {
                    let mut s = s;
                    repeat(elem, done + 1, end, n, &mut s, then);
                }
            }
        }
        atom => {
            let Some(&b) = n.get(at) else {
                return;
            };
            let size = match atom {
                Atom::Lit(l) if *l == b => 1,
                Atom::Any if b.is_ascii_digit() || b == b'*' => ANY_SIZE,
                Atom::Set(set) if set.contains(&b) => set.len() as u16,
                _ => return,
            };
            sizes.push(size);
            repeat(elem, done + 1, at + 1, n, sizes, then);
            sizes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> Option<Match> {
        Pattern::parse(p).unwrap().matches(n)
    }

    #[test]
    fn the_founding_lab_pattern_matches_by_variable_length() {
        let hit = m("22.", "221").unwrap();
        assert!(hit.whole);
        assert_eq!((hit.consumed, hit.literals()), (3, 2));
        let longer = m("22.", "2217").unwrap();
        assert!(!longer.whole, "the extra digit travels on");
        assert_eq!(m("22.", "22"), None, "`.` needs a digit");
        assert_eq!(m("22.", "231"), None);
        assert_eq!(m("22.$", "2217"), None, "`$` ends it");
        assert!(m("22.$", "221").unwrap().whole);
    }

    #[test]
    fn sets_ranges_negation_and_plus() {
        assert!(m("[2-4]..", "399").is_some());
        assert!(m("[2-4]..", "599").is_none());
        assert!(m("[^01]..$", "299").is_some());
        assert!(m("[^01]..$", "199").is_none());
        assert!(m("555[25]$", "5555").is_some());
        assert!(m("+6221.......$", "+62211234567").is_some());
        assert!(
            m("6221.......", "+62211234567").is_none(),
            "a literal plus must match"
        );
    }

    #[test]
    fn quantifiers_groups_and_t() {
        assert!(m("408(555)?1$", "4081").is_some());
        assert!(m("408(555)?1$", "4085551").is_some());
        assert!(m("74%$", "7").is_some());
        assert!(m("74%$", "7444").is_some());
        assert!(m("5+23$", "55523").is_some());
        assert!(m("5+23$", "23").is_none());
        let t = m("9T", "9001415551234").unwrap();
        assert!(t.whole && t.open);
        assert!(m("9T", "9").unwrap().whole);
    }

    #[test]
    fn more_literal_digits_rank_first_then_smaller_sets_then_fixed_length() {
        let rank = |a: &str, b: &str, n: &str| m(a, n).unwrap().rank(&m(b, n).unwrap());
        // Cisco's own example: 200. beats 2... for 2001.
        assert_eq!(rank("200.", "2...", "2001"), Ordering::Less);
        assert_eq!(rank("20[0-1].", "20..", "2001"), Ordering::Less);
        assert_eq!(rank("2...$", "2...", "2001"), Ordering::Equal);
        assert_eq!(
            rank("2...", "2..", "2001"),
            Ordering::Less,
            "covers the whole number"
        );
        assert_eq!(rank("2...", "2T", "2001"), Ordering::Less);
    }

    #[test]
    fn errors_name_the_character() {
        let e = Pattern::parse("22[3-").unwrap_err();
        assert_eq!(e.at, 3);
        assert!(e.to_string().contains("never closed"), "{e}");
        let e = Pattern::parse("2T1").unwrap_err();
        assert_eq!(
            (e.at, e.message.as_str()),
            (2, "`T` may only end the pattern")
        );
        assert!(Pattern::parse("?1").is_err());
        assert!(Pattern::parse("12a").unwrap_err().message.contains("`a`"));
        assert_eq!(Pattern::parse("^7......$").unwrap().literal_prefix(), "7");
    }
}
