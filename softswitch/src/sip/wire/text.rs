//! Small lexical helpers shared by the header parsers (RFC 3261 §25.1).

use std::borrow::Cow;

use super::error::SyntaxError;

pub fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Splits a header value on commas that are outside quoted strings and `<…>`, for
/// list headers such as Via and Contact. Empty elements are kept so callers can
/// refuse them (RFC 4475 §3.1.2.1 has `,;` runs that must not be silently skipped).
pub fn split_list(value: &str) -> Result<Vec<&str>, SyntaxError> {
    let mut out = Vec::with_capacity(2);
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                out.push(value[start..i].trim_matches([' ', '\t']));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quotes {
        return Err(SyntaxError::new("quoted string (no closing quote)"));
    }
    if in_angle {
        return Err(SyntaxError::new("URI in angle brackets (no closing '>')"));
    }
    out.push(value[start..].trim_matches([' ', '\t']));
    Ok(out)
}

/// Reads a quoted-string at the start of `s` (which must begin with `"`). Returns the
/// unescaped content and the rest of `s` after the closing quote.
pub fn quoted_string(s: &str) -> Result<(Cow<'_, str>, &str), SyntaxError> {
    debug_assert!(s.starts_with('"'));
    let bytes = s.as_bytes();
    let mut i = 1;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'"' => {
                let inner = &s[1..i];
                let text = if escaped {
                    Cow::Owned(unescape_quoted(inner))
                } else {
                    Cow::Borrowed(inner)
                };
                return Ok((text, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    Err(SyntaxError::new("quoted string (no closing quote)"))
}

fn unescape_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2). Invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_angles() {
        assert_eq!(
            split_list("\"a, b\" <sip:x@y>, <sip:z,w@v>;q=1").unwrap(),
            vec!["\"a, b\" <sip:x@y>", "<sip:z,w@v>;q=1"]
        );
        assert_eq!(split_list("a,,b").unwrap(), vec!["a", "", "b"]);
        assert!(split_list("\"open").is_err());
    }

    #[test]
    fn quoted_strings_unescape() {
        let (t, rest) = quoted_string(r#""J \"Rosenberg\" \\" <sip:a>"#).unwrap();
        assert_eq!(t, r#"J "Rosenberg" \"#);
        assert_eq!(rest, " <sip:a>");
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("sip%3Auser"), "sip:user");
        assert_eq!(percent_decode("a%00b"), "a\0b");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
