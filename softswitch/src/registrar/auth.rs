//! Digest authentication of requests (REGISTER now, INVITE later): verifies
//! credentials against stored HA1s, and writes the challenges.
//!
//! An unknown user is checked against a throw-away HA1 and fails exactly like a wrong
//! password, with the same challenge afterwards, so nobody can learn which extensions
//! exist (Asterisk's `alwaysauthreject`).

use std::collections::HashMap;

use crate::config::Config;
use crate::sip::wire::{Algorithm, Challenge, Credentials, HeaderName, Message};

use super::digest::{expected_response, ha1, responses_match};
use super::nonce::{NonceCheck, NonceCounts, NonceKey};

/// What the request's credentials amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Authenticated {
        user: String,
    },
    /// No usable credentials, a nonce we did not issue, or a stale nonce answered
    /// correctly (`stale = true`): challenge again. Not a failure.
    Challenge {
        stale: bool,
    },
    /// Wrong password or unknown user: a failure for the abuse guard.
    Failed {
        user: String,
    },
    /// Credentials that do not parse: 400.
    Malformed(&'static str),
}

#[derive(Debug)]
pub struct Authenticator {
    realm: String,
    algorithms: Vec<Algorithm>,
    nonce_key: NonceKey,
    nonce_lifetime: i64,
    counts: NonceCounts,
    /// user → HA1 per offered algorithm.
    users: HashMap<String, Vec<(Algorithm, String)>>,
    decoy: Vec<(Algorithm, String)>,
    md5_only_user_agents: Vec<String>,
}

impl Authenticator {
    pub fn new(config: &Config, nonce_key: NonceKey, decoy_secret: &str) -> Authenticator {
        let realm = config.sip.domain.clone();
        let algorithms: Vec<Algorithm> = config
            .auth
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::from_token(a))
            .collect();
        let table = |user: &str, password: &str| {
            algorithms
                .iter()
                .map(|&alg| (alg, ha1(alg, user, &realm, password)))
                .collect::<Vec<_>>()
        };
        let users = config
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.name.get_ref().clone(),
                    table(e.name.get_ref(), &e.password),
                )
            })
            .collect();
        let decoy = table("decoy", decoy_secret);
        Authenticator {
            nonce_lifetime: config.auth.nonce_lifetime as i64,
            realm,
            algorithms,
            nonce_key,
            counts: NonceCounts::default(),
            users,
            decoy,
            md5_only_user_agents: config.auth.md5_only_user_agents.clone(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Checks the credentials in `header` (Authorization or Proxy-Authorization).
    pub fn check(&self, msg: &Message, header: HeaderName, now: i64) -> AuthOutcome {
        let method = msg.method().map(|m| m.as_str()).unwrap_or("");
        let mut chosen = None;
        for value in msg.header_all(header) {
            let creds = match Credentials::parse(value) {
                Ok(Some(c)) => c,
                Ok(None) => continue, // another scheme (RFC 4475 §3.3.7): ignore it
                Err(_) => return AuthOutcome::Malformed("Malformed Authorization header"),
            };
            if creds.realm != self.realm {
                continue;
            }
            if let Some(alg) = creds.algorithm().filter(|a| self.algorithms.contains(a)) {
                chosen = Some((creds, alg));
                break;
            }
        }
        let Some((creds, alg)) = chosen else {
            return AuthOutcome::Challenge { stale: false };
        };
        let nonce_state = self.nonce_key.check(&creds.nonce, now, self.nonce_lifetime);
        if nonce_state == NonceCheck::Invalid {
            return AuthOutcome::Challenge { stale: false };
        }
        let nc = match (&creds.qop, &creds.nc, &creds.cnonce) {
            (None, _, _) => None,
            (Some(q), Some(nc), Some(_)) if q.eq_ignore_ascii_case("auth") => {
                match u32::from_str_radix(nc, 16) {
                    Ok(n) => Some(n),
                    Err(_) => return AuthOutcome::Malformed("Malformed nonce-count"),
                }
            }
            (Some(q), _, _) if !q.eq_ignore_ascii_case("auth") => {
                return AuthOutcome::Challenge { stale: false };
            }
            _ => return AuthOutcome::Malformed("qop=auth needs cnonce and nc"),
        };

        let user = creds.username.to_string();
        let table = self.users.get(&user).unwrap_or(&self.decoy);
        let known = self.users.contains_key(&user);
        let stored = table
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, h)| h.as_str())
            .unwrap_or_default();
        let want = expected_response(alg, stored, method, &creds);
        if !known || !responses_match(&want, &creds.response) {
            return AuthOutcome::Failed { user };
        }
        match nonce_state {
            NonceCheck::Stale => AuthOutcome::Challenge { stale: true },
            NonceCheck::Valid { issued_at } => {
                if let Some(n) = nc
                    && !self.counts.advance(&creds.nonce, n, issued_at)
                {
                    // A replayed nonce-count: make the client start over with a fresh nonce.
                    return AuthOutcome::Challenge { stale: true };
                }
                AuthOutcome::Authenticated { user }
            }
            NonceCheck::Invalid => unreachable!("handled above"),
        }
    }

    /// One challenge per offered algorithm, most preferred first (RFC 8760 §2.4), all
    /// with the same fresh nonce. Clients on the MD5-only list get just the MD5 one.
    pub fn challenges(
        &self,
        stale: bool,
        now: i64,
        random: [u8; 8],
        user_agent: Option<&str>,
    ) -> Vec<Challenge> {
        let nonce = self.nonce_key.issue(now, random);
        let md5_only = user_agent.is_some_and(|ua| {
            self.md5_only_user_agents
                .iter()
                .any(|p| ua.starts_with(p.as_str()))
        }) && self.algorithms.contains(&Algorithm::Md5);
        self.algorithms
            .iter()
            .filter(|&&a| !md5_only || a == Algorithm::Md5)
            .map(|&algorithm| Challenge {
                realm: self.realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm,
                qop_auth: true,
                stale,
            })
            .collect()
    }

    /// Forgets nonce-counts of nonces that can no longer be accepted.
    pub fn sweep(&self, now: i64) {
        self.counts.sweep(now - self.nonce_lifetime - 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::digest::hash_hex;
    use crate::sip::wire::Framing;
    use bytes::Bytes;
    use std::path::Path;

    fn authenticator() -> Authenticator {
        let cfg = Config::parse(
            "[sip]\nlisten=[\"udp:127.0.0.1:5060\"]\ndomain=\"pbx.local\"\n[[endpoint]]\nname=\"1001\"\npassword=\"s3cret\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        Authenticator::new(&cfg, NonceKey::new([3; 32]), "decoy")
    }

    fn register_with(auth_line: &str) -> Message {
        let text = format!(
            "REGISTER sip:pbx.local SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1\r\n\
             From: <sip:1001@pbx.local>;tag=1\r\nTo: <sip:1001@pbx.local>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\n\
             {auth_line}Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text), Framing::Datagram).unwrap()
    }

    fn answer(alg: Algorithm, user: &str, password: &str, nonce: &str, nc: &str) -> String {
        let ha1 = hash_hex(alg, &[user.as_bytes(), b"pbx.local", password.as_bytes()]);
        let ha2 = hash_hex(alg, &[b"REGISTER", b"sip:pbx.local"]);
        let resp = hash_hex(
            alg,
            &[
                ha1.as_bytes(),
                nonce.as_bytes(),
                nc.as_bytes(),
                b"cn",
                b"auth",
                ha2.as_bytes(),
            ],
        );
        format!(
            "Authorization: Digest username=\"{user}\", realm=\"pbx.local\", nonce=\"{nonce}\", \
             uri=\"sip:pbx.local\", response=\"{resp}\", algorithm={}, cnonce=\"cn\", qop=auth, nc={nc}\r\n",
            alg.as_str()
        )
    }

    #[test]
    fn challenge_offers_both_algorithms_with_one_nonce() {
        let a = authenticator();
        let ch = a.challenges(false, 1000, [9; 8], Some("Linphone/5.1"));
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0].algorithm, Algorithm::Md5);
        assert_eq!(ch[1].algorithm, Algorithm::Sha256);
        assert_eq!(ch[0].nonce, ch[1].nonce);
        let old = a.challenges(false, 1000, [9; 8], Some("baresip v1.0.0 (x86_64/linux)"));
        assert_eq!(
            old.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
            vec![Algorithm::Md5]
        );
        assert_eq!(
            a.check(&register_with(""), HeaderName::Authorization, 1000),
            AuthOutcome::Challenge { stale: false }
        );
    }

    #[test]
    fn both_algorithms_authenticate_and_replays_are_refused() {
        let a = authenticator();
        let nonce = a.challenges(false, 1000, [1; 8], None)[0].nonce.clone();
        for (alg, nc) in [
            (Algorithm::Md5, "00000001"),
            (Algorithm::Sha256, "00000002"),
        ] {
            let msg = register_with(&answer(alg, "1001", "s3cret", &nonce, nc));
            assert_eq!(
                a.check(&msg, HeaderName::Authorization, 1010),
                AuthOutcome::Authenticated {
                    user: "1001".into()
                },
                "{alg:?}"
            );
        }
        let replay = register_with(&answer(
            Algorithm::Md5,
            "1001",
            "s3cret",
            &nonce,
            "00000002",
        ));
        assert_eq!(
            a.check(&replay, HeaderName::Authorization, 1011),
            AuthOutcome::Challenge { stale: true }
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let a = authenticator();
        let nonce = a.challenges(false, 1000, [1; 8], None)[0].nonce.clone();
        let wrong = register_with(&answer(Algorithm::Md5, "1001", "guess", &nonce, "00000001"));
        let unknown = register_with(&answer(
            Algorithm::Md5,
            "9999",
            "s3cret",
            &nonce,
            "00000001",
        ));
        assert_eq!(
            a.check(&wrong, HeaderName::Authorization, 1001),
            AuthOutcome::Failed {
                user: "1001".into()
            }
        );
        assert_eq!(
            a.check(&unknown, HeaderName::Authorization, 1001),
            AuthOutcome::Failed {
                user: "9999".into()
            }
        );
    }

    #[test]
    fn stale_nonce_answered_correctly_is_stale_not_failed() {
        let a = authenticator();
        let nonce = a.challenges(false, 1000, [1; 8], None)[0].nonce.clone();
        let msg = register_with(&answer(
            Algorithm::Md5,
            "1001",
            "s3cret",
            &nonce,
            "00000001",
        ));
        assert_eq!(
            a.check(&msg, HeaderName::Authorization, 2000),
            AuthOutcome::Challenge { stale: true }
        );
        let bad = register_with(&answer(Algorithm::Md5, "1001", "nope", &nonce, "00000001"));
        assert!(matches!(
            a.check(&bad, HeaderName::Authorization, 2000),
            AuthOutcome::Failed { .. }
        ));
    }

    #[test]
    fn foreign_nonces_and_realms_just_get_a_challenge() {
        let a = authenticator();
        let msg = register_with(&answer(
            Algorithm::Md5,
            "1001",
            "s3cret",
            "notours",
            "00000001",
        ));
        assert_eq!(
            a.check(&msg, HeaderName::Authorization, 1000),
            AuthOutcome::Challenge { stale: false }
        );
        let other_realm = register_with(
            "Authorization: Digest username=\"1001\", realm=\"elsewhere\", nonce=\"n\", uri=\"sip:x\", response=\"00\"\r\n",
        );
        assert_eq!(
            a.check(&other_realm, HeaderName::Authorization, 1000),
            AuthOutcome::Challenge { stale: false }
        );
        let broken = register_with("Authorization: Digest username=\"1001\"\r\n");
        assert!(matches!(
            a.check(&broken, HeaderName::Authorization, 1000),
            AuthOutcome::Malformed(_)
        ));
    }
}
