//! Digest authentication headers: Authorization / Proxy-Authorization credentials and
//! WWW-Authenticate / Proxy-Authenticate challenges (RFC 3261 §22.4, RFC 7616, RFC 8760).

use std::borrow::Cow;
use std::fmt;

use super::error::SyntaxError;
use super::method::is_token_char;
use super::text::{quote, quoted_string};

/// Digest algorithms. RFC 8760 names them `MD5`, `SHA-256`, `SHA-512-256` (with `-sess`
/// variants); the token is case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    pub fn from_token(s: &str) -> Option<Algorithm> {
        const TABLE: [(&str, Algorithm); 6] = [
            ("MD5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
            ("SHA-512-256", Algorithm::Sha512_256),
            ("SHA-512-256-sess", Algorithm::Sha512_256Sess),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, a)| *a)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }
}

/// A parsed `Digest` credentials header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    /// `None` when the parameter is absent, which RFC 2617 defines as MD5.
    pub algorithm: Option<Cow<'a, str>>,
    pub cnonce: Option<Cow<'a, str>>,
    pub opaque: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub nc: Option<Cow<'a, str>>,
}

impl<'a> Credentials<'a> {
    /// Parses `Digest name=value, …`. Returns `Ok(None)` for other schemes (such as
    /// `NoOneKnowsThisScheme` in RFC 4475 §3.3.7) so the caller can ignore them.
    pub fn parse(value: &'a str) -> Result<Option<Credentials<'a>>, SyntaxError> {
        let (scheme, params) = split_scheme(value)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let mut c = Credentials::default();
        let mut have = (false, false, false, false, false);
        for (name, val) in auth_params(params)? {
            match name.to_ascii_lowercase().as_str() {
                "username" => (c.username, have.0) = (val, true),
                "realm" => (c.realm, have.1) = (val, true),
                "nonce" => (c.nonce, have.2) = (val, true),
                "uri" => (c.uri, have.3) = (val, true),
                "response" => (c.response, have.4) = (val, true),
                "algorithm" => c.algorithm = Some(val),
                "cnonce" => c.cnonce = Some(val),
                "opaque" => c.opaque = Some(val),
                "qop" => c.qop = Some(val),
                "nc" => c.nc = Some(val),
                _ => {}
            }
        }
        if !(have.0 && have.1 && have.2 && have.3 && have.4) {
            return Err(SyntaxError::new("Digest credentials (missing parameter)"));
        }
        Ok(Some(c))
    }

    /// The algorithm asked for; absent means MD5, an unknown token is `None`.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.algorithm {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::from_token(a),
        }
    }
}

/// A `Digest` challenge as this switch writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub qop_auth: bool,
    pub stale: bool,
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        )?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        write!(f, ", algorithm={}", self.algorithm.as_str())?;
        if self.qop_auth {
            f.write_str(", qop=\"auth\"")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// A challenge as read from a peer's 401/407 (used when the switch authenticates
/// toward a trunk).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedChallenge<'a> {
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub opaque: Option<Cow<'a, str>>,
    pub algorithm: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub stale: bool,
}

impl<'a> ParsedChallenge<'a> {
    pub fn parse(value: &'a str) -> Result<Option<ParsedChallenge<'a>>, SyntaxError> {
        let (scheme, params) = split_scheme(value)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let mut c = ParsedChallenge::default();
        for (name, val) in auth_params(params)? {
            match name.to_ascii_lowercase().as_str() {
                "realm" => c.realm = val,
                "nonce" => c.nonce = val,
                "opaque" => c.opaque = Some(val),
                "algorithm" => c.algorithm = Some(val),
                "qop" => c.qop = Some(val),
                "stale" => c.stale = val.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Ok(Some(c))
    }
}

fn split_scheme(value: &str) -> Result<(&str, &str), SyntaxError> {
    let v = value.trim_start_matches([' ', '\t']);
    let end = v.find([' ', '\t']).unwrap_or(v.len());
    let scheme = &v[..end];
    if scheme.is_empty() || !scheme.bytes().all(is_token_char) {
        return Err(SyntaxError::new("authentication scheme"));
    }
    Ok((scheme, &v[end..]))
}

/// `auth-param *(COMMA auth-param)`, values unquoted.
fn auth_params(s: &str) -> Result<Vec<(&str, Cow<'_, str>)>, SyntaxError> {
    let mut out = Vec::with_capacity(10);
    let mut rest = s.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(SyntaxError::new("auth-param"))?;
        let name = rest[..eq].trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(SyntaxError::new("auth-param name"));
        }
        let after = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let (value, tail) = if after.starts_with('"') {
            quoted_string(after)?
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (
                Cow::Borrowed(after[..end].trim_end_matches([' ', '\t'])),
                &after[end..],
            )
        };
        out.push((name, value));
        let tail = tail.trim_start_matches([' ', '\t']);
        rest = match tail.strip_prefix(',') {
            Some(t) => t.trim_start_matches([' ', '\t', ',']),
            None if tail.is_empty() => "",
            None => return Err(SyntaxError::new("auth-param list")),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_in_any_order_and_case() {
        let v = r#"Digest username="1001",realm="pbx.local", nonce="n1", uri="sip:pbx.local",
            response="abcdef", algorithm=SHA-256, cnonce="c1", qop=auth, NC=00000001, opaque="o""#;
        let v = v.replace('\n', "");
        let c = Credentials::parse(&v).unwrap().unwrap();
        assert_eq!(c.username, "1001");
        assert_eq!(c.realm, "pbx.local");
        assert_eq!(c.algorithm(), Some(Algorithm::Sha256));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.opaque.as_deref(), Some("o"));
    }

    #[test]
    fn other_schemes_are_ignored_and_missing_fields_refused() {
        assert_eq!(
            Credentials::parse("NoOneKnowsThisScheme opaque-data=here").unwrap(),
            None
        );
        assert!(Credentials::parse("Digest username=\"a\"").is_err());
        let md5 = Credentials::parse(
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="x""#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(md5.algorithm(), Some(Algorithm::Md5));
    }

    #[test]
    fn challenges_write_rfc8760_tokens() {
        let ch = Challenge {
            realm: "pbx.local".into(),
            nonce: "abc".into(),
            opaque: None,
            algorithm: Algorithm::Sha256,
            qop_auth: true,
            stale: true,
        };
        let text = ch.to_string();
        assert_eq!(
            text,
            r#"Digest realm="pbx.local", nonce="abc", algorithm=SHA-256, qop="auth", stale=true"#
        );
        let back = ParsedChallenge::parse(&text).unwrap().unwrap();
        assert_eq!(back.algorithm.as_deref(), Some("SHA-256"));
        assert!(back.stale);
    }
}
