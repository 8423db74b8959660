//! `${...}` and `$[...]` substitution (§8.2) and substring arithmetic (§8.3).

/// Where substitution gets values from. The interpreter implements it over a channel;
/// the loader over the globals read so far.
pub trait Resolver {
    /// A variable (built-ins, channel, globals), `None` when unset.
    fn variable(&mut self, name: &str) -> Option<String>;
    /// A function call; `None` when no such function exists.
    fn function(&mut self, name: &str, args: &str) -> Option<String>;
    /// Something worth a warning in the log/trace.
    fn warn(&mut self, _msg: String) {}
}

/// Asterisk aborts substitution nested deeper than this.
const MAX_DEPTH: usize = 15;

/// Substitutes every `${...}` and `$[...]` in `text` once (§8.1: the result is not
/// scanned again).
pub fn substitute(text: &str, r: &mut dyn Resolver) -> String {
    substitute_at(text, r, 0)
}

fn needs_subst(s: &str) -> bool {
    s.contains("${") || s.contains("$[")
}

fn substitute_at(text: &str, r: &mut dyn Resolver, depth: usize) -> String {
    if !needs_subst(text) {
        return text.to_string();
    }
    if depth > MAX_DEPTH {
        r.warn("substitution nested more than 15 levels deep; aborted".into());
        return String::new();
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut lit_start = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() && (b[i + 1] == b'{' || b[i + 1] == b'[') {
            out.push_str(&text[lit_start..i]);
            let (open, close) = if b[i + 1] == b'{' {
                (b'{', b'}')
            } else {
                (b'[', b']')
            };
            let start = i + 2;
            let mut level = 1;
            let mut j = start;
            while j < b.len() {
                if b[j] == open {
                    level += 1;
                } else if b[j] == close {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                }
                j += 1;
            }
            let inner_raw = &text[start..j.min(b.len())];
            if j >= b.len() {
                r.warn(format!("missing '{}' in '{}'", close as char, &text[i..]));
            }
            let inner = substitute_at(inner_raw, r, depth + 1);
            if open == b'{' {
                out.push_str(&evaluate_reference(&inner, r));
            } else {
                out.push_str(&crate::expr::evaluate(&inner, r));
            }
            i = (j + 1).min(b.len());
            lit_start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[lit_start..]);
    out
}

/// Evaluates `NAME`, `NAME:off:len` or `FUNC(args)[:off[:len]]`.
pub fn evaluate_reference(reference: &str, r: &mut dyn Resolver) -> String {
    let (name, range) = split_range(reference);
    let value = if let Some(open) = name.find('(') {
        let fname = &name[..open];
        let rest = &name[open + 1..];
        let args = match rest.rfind(')') {
            Some(c) => &rest[..c],
            None => rest,
        };
        match r.function(fname, args) {
            Some(v) => v,
            None => {
                r.warn(format!("unknown function '{fname}' in '${{{reference}}}'"));
                String::new()
            }
        }
    } else {
        r.variable(name).unwrap_or_default()
    };
    match range {
        Some(spec) => {
            let (off, len) = parse_range(spec);
            substring(&value, off, len)
        }
        None => value,
    }
}

/// Splits at the first `:` outside parentheses.
fn split_range(reference: &str) -> (&str, Option<&str>) {
    let mut depth = 0i32;
    for (i, c) in reference.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ':' if depth <= 0 => return (&reference[..i], Some(&reference[i + 1..])),
            _ => {}
        }
    }
    (reference, None)
}

/// Reads `offset[:length]` the way `sscanf("%d:%d")` does: an unreadable offset is 0
/// and then no length is read, so `${S::2}` is the whole value (§8.2).
pub fn parse_range(spec: &str) -> (i64, Option<i64>) {
    let Some((off, rest)) = leading_int(spec) else {
        return (0, None);
    };
    let len = rest.strip_prefix(':').and_then(leading_int).map(|(l, _)| l);
    (off, len)
}

fn leading_int(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start();
    let bytes = t.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        end = 1;
    }
    let digits_start = end;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    let v = t[..end].parse::<i64>().unwrap_or(if t.starts_with('-') {
        i64::from(i32::MIN)
    } else {
        i64::from(i32::MAX)
    });
    Some((v, &t[end..]))
}

/// §8.3, in bytes as Asterisk counts them.
pub fn substring(value: &str, offset: i64, length: Option<i64>) -> String {
    let b = value.as_bytes();
    let l = b.len() as i64;
    let mut off = offset;
    if off < 0 {
        off = (l + off).max(0);
    }
    if off >= l {
        return String::new();
    }
    let rest = &b[off as usize..];
    let r = rest.len() as i64;
    let slice = match length {
        None => rest,
        Some(n) if n >= 0 => &rest[..n.min(r) as usize],
        Some(n) => {
            if r <= -n {
                &rest[..0]
            } else {
                &rest[..(r + n) as usize]
            }
        }
    };
    String::from_utf8_lossy(slice).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<String, String>);
    impl Resolver for Vars {
        fn variable(&mut self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn function(&mut self, name: &str, args: &str) -> Option<String> {
            (name == "LEN").then(|| args.len().to_string())
        }
    }

    fn sub(text: &str) -> String {
        let mut v = Vars(
            [
                ("EXTEN", "95551234"),
                ("S", "abc"),
                ("X", "S"),
                ("N", "2"),
                ("V", "${S}"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        );
        substitute(text, &mut v)
    }

    #[test]
    fn substring_table() {
        for (r, want) in [
            ("${EXTEN:1}", "5551234"),
            ("${EXTEN:0:4}", "9555"),
            ("${EXTEN:-4}", "1234"),
            ("${EXTEN:-4:2}", "12"),
            ("${EXTEN:1:-4}", "555"),
            ("${S:5}", ""),
            ("${S:-10}", "abc"),
            ("${S:-10:2}", "ab"),
            ("${S:1:0}", ""),
            ("${S::2}", "abc"),
            ("${S:0:-5}", ""),
            ("${S:-2:-1}", "b"),
        ] {
            assert_eq!(sub(r), want, "{r}");
        }
    }

    #[test]
    fn nesting_and_literals() {
        assert_eq!(sub("${${X}}"), "abc");
        assert_eq!(sub("${EXTEN:${N}}"), "551234");
        assert_eq!(sub("$5 $ {x} $$"), "$5 $ {x} $$");
        assert_eq!(sub("${V}"), "${S}");
        assert_eq!(sub("${UNSET}x"), "x");
        assert_eq!(sub("${LEN(a,b)}"), "3");
        assert_eq!(sub("${LEN(abcdefghijkl):1:1}"), "2");
    }
}
