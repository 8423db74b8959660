//! `;name[=value]` parameter lists, read lazily from the text they came in. Used for
//! URI parameters and for header parameters (Via, name-addr, Contact).

use super::error::SyntaxError;
use super::method::is_token_char;
use super::text::quoted_string;

/// The raw parameter text, starting at the first `;` (or empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(pub &'a str);

impl<'a> Params<'a> {
    pub fn raw(&self) -> &'a str {
        self.0
    }

    /// Iterates `(name, value)`; values keep their quotes (see [`unquote`]).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        split_params(self.0)
            .filter(|p| !p.is_empty())
            .map(|p| match p.find('=') {
                Some(eq) => (
                    p[..eq].trim_matches([' ', '\t']),
                    Some(p[eq + 1..].trim_matches([' ', '\t'])),
                ),
                None => (p, None),
            })
    }

    /// The value of a parameter (names compare case-insensitively). `Some(None)` is a
    /// parameter present without a value, such as `;lr` or `;rport`.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value with quotes removed, or `None` when the parameter is absent or bare.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten().map(unquote)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Checks `*( SEMI generic-param )` (RFC 3261 §25.1): token names, and values that are
    /// a token, a host or a quoted string. Empty parameters (`;;`) are refused.
    pub fn validate(&self) -> Result<(), SyntaxError> {
        let text = self.0.trim_start_matches([' ', '\t']);
        if text.is_empty() {
            return Ok(());
        }
        if !text.starts_with(';') {
            return Err(SyntaxError::new("parameter list"));
        }
        for p in split_params(text) {
            let (name, value) = match p.find('=') {
                Some(eq) => (
                    p[..eq].trim_matches([' ', '\t']),
                    Some(p[eq + 1..].trim_matches([' ', '\t'])),
                ),
                None => (p.trim_matches([' ', '\t']), None),
            };
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(SyntaxError::new("parameter name"));
            }
            if let Some(v) = value {
                let ok = if v.starts_with('"') {
                    matches!(quoted_string(v), Ok((_, rest)) if rest.trim().is_empty())
                } else {
                    !v.is_empty()
                        && v.bytes()
                            .all(|b| is_token_char(b) || matches!(b, b'[' | b']' | b':'))
                };
                if !ok {
                    return Err(SyntaxError::new("parameter value"));
                }
            }
        }
        Ok(())
    }
}

/// Splits on `;` outside quoted strings, skipping the text before the first `;`.
fn split_params(s: &str) -> impl Iterator<Item = &str> {
    let s = match s.find(';') {
        Some(i) => &s[i + 1..],
        None => "",
    };
    let mut rest = if s.is_empty() { None } else { Some(s) };
    std::iter::from_fn(move || {
        let text = rest?;
        let bytes = text.as_bytes();
        let mut in_quotes = false;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b';' if !in_quotes => {
                    rest = Some(&text[i + 1..]);
                    return Some(text[..i].trim_matches([' ', '\t']));
                }
                _ => {}
            }
            i += 1;
        }
        rest = None;
        Some(text.trim_matches([' ', '\t']))
    })
}

/// Strips surrounding quotes from a parameter value (escapes inside are rare in
/// parameters and are left as written).
pub fn unquote(v: &str) -> &str {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_values_and_quotes() {
        let p = Params(";branch=z9hG4bK1;rport;received=10.0.0.1;x=\"a;b\"");
        assert_eq!(p.value("branch"), Some("z9hG4bK1"));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("RECEIVED"), Some("10.0.0.1"));
        assert_eq!(p.value("x"), Some("a;b"));
        assert_eq!(p.get("missing"), None);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn empty_parameters_are_malformed() {
        assert!(Params(";;tag=1").validate().is_err());
        assert!(Params(";tag=").validate().is_err());
        assert!(Params(";ta g=1").validate().is_err());
        assert!(Params("").validate().is_ok());
        assert!(Params(" ; lr").validate().is_ok());
    }
}
