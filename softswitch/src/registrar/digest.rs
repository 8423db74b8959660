//! Digest computation (RFC 2617 §3.2.2, RFC 7616 §3.4.1, RFC 8760 for SIP).
//!
//! The switch stores `HA1 = H(username:realm:password)` per endpoint and algorithm,
//! computed once at config load, so verifying a request costs two hashes.

use md5::Md5;
use sha2::{Sha256, Sha512_256};
use subtle::ConstantTimeEq;

use crate::sip::wire::{Algorithm, Credentials};

/// Lower-case hex digest of `parts` joined by `:` under `alg`'s hash.
pub fn hash_hex(alg: Algorithm, parts: &[&[u8]]) -> String {
    fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
        let mut h = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h.update(b":");
            }
            h.update(p);
        }
        hex::encode(h.finalize())
    }
    match alg {
        Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
        Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
        Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
    }
}

/// HA1 for the plain (non-session) form of `alg`.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_hex(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
}

/// The `response` a client must send for these credentials, given the stored plain HA1.
pub fn expected_response(
    alg: Algorithm,
    stored_ha1: &str,
    method: &str,
    creds: &Credentials<'_>,
) -> String {
    let cnonce = creds.cnonce.as_deref().unwrap_or("");
    let ha1 = if alg.is_session() {
        hash_hex(
            alg,
            &[
                stored_ha1.as_bytes(),
                creds.nonce.as_bytes(),
                cnonce.as_bytes(),
            ],
        )
    } else {
        stored_ha1.to_owned()
    };
    let ha2 = hash_hex(alg, &[method.as_bytes(), creds.uri.as_bytes()]);
    match creds.qop.as_deref() {
        Some(qop) => hash_hex(
            alg,
            &[
                ha1.as_bytes(),
                creds.nonce.as_bytes(),
                creds.nc.as_deref().unwrap_or("").as_bytes(),
                cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ],
        ),
        None => hash_hex(
            alg,
            &[ha1.as_bytes(), creds.nonce.as_bytes(), ha2.as_bytes()],
        ),
    }
}

/// The `Authorization`/`Proxy-Authorization` value that answers `challenge`
/// for `method` to `uri` as `username` (the switch calling a trunk that
/// challenges it). None for an algorithm this switch does not know.
pub fn authorization(
    challenge: &crate::sip::wire::ParsedChallenge<'_>,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Option<String> {
    let alg = match challenge.algorithm.as_deref() {
        None => Algorithm::Md5,
        Some(a) => Algorithm::from_token(a)?,
    };
    // qop is a list; "auth" is the only one that covers a request without its body.
    let qop_auth = challenge
        .qop
        .as_deref()
        .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
    let creds = Credentials {
        username: username.into(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.into(),
        cnonce: qop_auth.then(|| cnonce.into()),
        qop: qop_auth.then(|| "auth".into()),
        nc: qop_auth.then(|| "00000001".into()),
        ..Credentials::default()
    };
    let stored = ha1(alg, username, &challenge.realm, password);
    let response = expected_response(alg, &stored, method, &creds);
    let quote = crate::sip::wire::quote;
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
        quote(username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        quote(&response),
        alg.as_str()
    );
    if let Some(o) = &challenge.opaque {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    if qop_auth {
        out.push_str(&format!(
            ", qop=auth, nc=00000001, cnonce={}",
            quote(cnonce)
        ));
    }
    Some(out)
}

/// Compares two hex responses in constant time (case-insensitive: some clients send
/// upper-case hex).
pub fn responses_match(expected: &str, got: &str) -> bool {
    let got = got.to_ascii_lowercase();
    expected.len() == got.len() && bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn creds<'a>(nonce: &'a str, uri: &'a str, cnonce: &'a str) -> Credentials<'a> {
        Credentials {
            username: Cow::Borrowed("Mufasa"),
            nonce: Cow::Borrowed(nonce),
            uri: Cow::Borrowed(uri),
            cnonce: Some(Cow::Borrowed(cnonce)),
            qop: Some(Cow::Borrowed("auth")),
            nc: Some(Cow::Borrowed("00000001")),
            ..Default::default()
        }
    }

    #[test]
    fn rfc2617_md5_vector() {
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let c = creds(
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "/dir/index.html",
            "0a4f113b",
        );
        assert_eq!(
            expected_response(Algorithm::Md5, &ha1, "GET", &c),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn rfc7616_md5_and_sha256_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let c = creds(nonce, "/dir/index.html", cnonce);
        let md5 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            expected_response(Algorithm::Md5, &md5, "GET", &c),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let sha = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            expected_response(Algorithm::Sha256, &sha, "GET", &c),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn legacy_rfc2069_form_without_qop() {
        let ha1 = ha1(Algorithm::Md5, "1001", "pbx.local", "secret");
        let c = Credentials {
            nonce: Cow::Borrowed("abc"),
            uri: Cow::Borrowed("sip:pbx.local"),
            ..Default::default()
        };
        let ha2 = hash_hex(Algorithm::Md5, &[b"REGISTER", b"sip:pbx.local"]);
        let want = hash_hex(Algorithm::Md5, &[ha1.as_bytes(), b"abc", ha2.as_bytes()]);
        assert_eq!(
            expected_response(Algorithm::Md5, &ha1, "REGISTER", &c),
            want
        );
    }

    #[test]
    fn comparison_ignores_hex_case_and_rejects_other_lengths() {
        assert!(responses_match("abcdef", "ABCDEF"));
        assert!(!responses_match("abcdef", "abcde"));
        assert!(!responses_match("abcdef", "abcdeg"));
    }

    #[test]
    fn the_answer_to_a_trunks_challenge_verifies_as_the_trunk_would_verify_it() {
        for (alg, qop) in [
            (None, None),
            (Some("MD5"), Some("auth,auth-int")),
            (Some("SHA-256"), Some("auth")),
        ] {
            let challenge = crate::sip::wire::ParsedChallenge {
                realm: "carrier.example".into(),
                nonce: "abc123".into(),
                opaque: Some("op".into()),
                algorithm: alg.map(Into::into),
                qop: qop.map(Into::into),
                stale: false,
            };
            let value = authorization(
                &challenge,
                "trunk1",
                "s3cret",
                "INVITE",
                "sip:2001@10.0.0.2",
                "cn0",
            )
            .unwrap();
            let creds = Credentials::parse(&value).unwrap().unwrap();
            assert_eq!(creds.uri, "sip:2001@10.0.0.2");
            assert_eq!(creds.opaque.as_deref(), Some("op"));
            assert_eq!(creds.qop.is_some(), qop.is_some(), "{value}");
            let a = creds.algorithm().unwrap_or(Algorithm::Md5);
            let stored = ha1(a, "trunk1", "carrier.example", "s3cret");
            let expected = expected_response(a, &stored, "INVITE", &creds);
            assert!(responses_match(&expected, &creds.response), "{value}");
        }
        let odd = crate::sip::wire::ParsedChallenge {
            algorithm: Some("AKAv1-MD5".into()),
            ..Default::default()
        };
        assert!(authorization(&odd, "u", "p", "INVITE", "sip:x", "c").is_none());
    }
}
