//! How applications split their substituted data (§9, `main/app.c`
//! `__ast_app_separate_args()`).

/// Which splitter variant to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Quotes and backslashes are removed (most applications).
    Standard,
    /// Same grouping, but quotes and backslashes stay (Gosub arguments, ExecIf).
    Raw,
}

/// Splits `data` on `delim`. A delimiter inside `(...)`, `[...]` or `"..."` does not
/// split; whitespace is not trimmed; a trailing delimiter yields one more, empty,
/// argument; empty data yields no argument.
pub fn split_args(data: &str, delim: char, mode: Split) -> Vec<String> {
    let mut out = Vec::new();
    if data.is_empty() {
        return out;
    }
    let chars: Vec<char> = data.chars().collect();
    let (mut paren, mut bracket, mut quote) = (0u32, 0u32, false);
    let mut cur = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '(' => paren += 1,
            ')' => paren = paren.saturating_sub(1),
            '[' => bracket += 1,
            ']' => bracket = bracket.saturating_sub(1),
            '"' if delim != '"' => {
                quote = !quote;
                if mode == Split::Standard {
                    i += 1;
                    continue;
                }
            }
            '\\' => {
                if mode == Split::Raw {
                    cur.push(c);
                }
                if let Some(&n) = chars.get(i + 1) {
                    cur.push(n);
                }
                i += 2;
                continue;
            }
            _ if c == delim && paren == 0 && bracket == 0 && !quote => {
                out.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

/// Splits at the first `delim` outside parentheses, brackets and quotes (raw rules),
/// e.g. the `?` and `:` of ExecIf.
pub fn split_once_grouped(data: &str, delim: char) -> (String, Option<String>) {
    let (mut paren, mut bracket, mut quote) = (0u32, 0u32, false);
    let mut escaped = false;
    for (i, c) in data.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => paren += 1,
            ')' => paren = paren.saturating_sub(1),
            '[' => bracket += 1,
            ']' => bracket = bracket.saturating_sub(1),
            '"' => quote = !quote,
            _ if c == delim && paren == 0 && bracket == 0 && !quote => {
                return (data[..i].to_string(), Some(data[i + 1..].to_string()));
            }
            _ => {}
        }
    }
    (data.to_string(), None)
}

/// `Name(args)`: the name before the first `(`, the args up to the last `)`.
pub fn split_app_call(s: &str) -> (String, String) {
    match s.find('(') {
        Some(open) => {
            let rest = &s[open + 1..];
            let args = match rest.rfind(')') {
                Some(close) => &rest[..close],
                None => rest,
            };
            (s[..open].trim().to_string(), args.to_string())
        }
        None => (s.trim().to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std(s: &str) -> Vec<String> {
        split_args(s, ',', Split::Standard)
    }

    #[test]
    fn standard_splitting() {
        assert_eq!(std("a,b"), ["a", "b"]);
        assert_eq!(std("a,"), ["a", ""]);
        assert!(std("").is_empty());
        assert_eq!(std("f(a,b),c"), ["f(a,b)", "c"]);
        assert_eq!(std("[a,b],c"), ["[a,b]", "c"]);
        assert_eq!(std("\"a,b\",c"), ["a,b", "c"]);
        assert_eq!(std("a\\,b,c"), ["a,b", "c"]);
        assert_eq!(std(" a , b "), [" a ", " b "]);
    }

    #[test]
    fn raw_splitting_keeps_quotes() {
        assert_eq!(
            split_args("\"a,b\",c\\,d", ',', Split::Raw),
            ["\"a,b\"", "c\\,d"]
        );
    }

    #[test]
    fn grouped_once() {
        assert_eq!(
            split_once_grouped("$[1=1]?Set(a=b?c):NoOp()", '?'),
            ("$[1=1]".to_string(), Some("Set(a=b?c):NoOp()".to_string()))
        );
        assert_eq!(
            split_app_call("NoOp(f(x) and (y)) tail"),
            ("NoOp".to_string(), "f(x) and (y)".to_string())
        );
    }
}
