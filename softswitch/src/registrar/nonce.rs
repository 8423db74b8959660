//! Stateless nonces: `base64url(issued_at ‖ random ‖ tag)` where the tag is a keyed
//! SHA-256 over the first two fields. Any node sharing the secret (kept in the
//! database) can check a nonce, and a restart does not invalidate phones' nonces.
//!
//! Replay protection for qop=auth comes from [`NonceCounts`]: each nonce's highest
//! nonce-count seen, forgotten once the nonce could no longer be accepted anyway.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

const TAG_LEN: usize = 16;
const RAW_LEN: usize = 8 + 8 + TAG_LEN;

/// The verdict on a nonce a client sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Valid {
        issued_at: i64,
    },
    /// Ours, but older than the nonce lifetime: answer with `stale=true`.
    Stale,
    /// Not ours (forged, mangled, or from a secret we no longer have).
    Invalid,
}

#[derive(Clone)]
pub struct NonceKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    pub fn new(secret: [u8; 32]) -> Self {
        NonceKey { secret }
    }

    fn tag(&self, head: &[u8]) -> [u8; TAG_LEN] {
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(head)
            .chain_update(self.secret)
            .finalize();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        tag
    }

    /// A fresh nonce issued at `now` (Unix seconds) with 8 bytes of `random`.
    pub fn issue(&self, now: i64, random: [u8; 8]) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&random);
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn check(&self, nonce: &str, now: i64, lifetime_secs: i64) -> NonceCheck {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceCheck::Invalid;
        };
        if raw.len() != RAW_LEN || !bool::from(self.tag(&raw[..16]).ct_eq(&raw[16..])) {
            return NonceCheck::Invalid;
        }
        let issued_at = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        // A nonce from the future means a clock step back; treat it like an old one.
        if issued_at > now + 5 || now - issued_at > lifetime_secs {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid { issued_at }
        }
    }
}

/// nonce → (highest nonce-count, issue time).
type CountShard = Mutex<HashMap<Box<str>, (u32, i64)>>;

/// Highest nonce-count seen per nonce, sharded so concurrent workers rarely meet.
#[derive(Debug)]
pub struct NonceCounts {
    shards: Vec<CountShard>,
}

impl Default for NonceCounts {
    fn default() -> Self {
        NonceCounts {
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl NonceCounts {
    fn shard(&self, nonce: &str) -> &CountShard {
        let h = nonce
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        &self.shards[h as usize % self.shards.len()]
    }

    /// Records `nc` for `nonce`; false if it does not exceed the last one (a replay).
    pub fn advance(&self, nonce: &str, nc: u32, issued_at: i64) -> bool {
        let mut map = self.shard(nonce).lock().expect("nonce-count lock");
        match map.get_mut(nonce) {
            Some((last, _)) if nc <= *last => false,
            Some((last, _)) => {
                *last = nc;
                true
            }
            None => {
                map.insert(nonce.into(), (nc, issued_at));
                true
            }
        }
    }

    /// Forgets counts of nonces issued before `cutoff`; they are stale by now.
    pub fn sweep(&self, cutoff: i64) {
        for shard in &self.shards {
            shard
                .lock()
                .expect("nonce-count lock")
                .retain(|_, (_, issued)| *issued >= cutoff);
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("nonce-count lock").len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonces_verify_until_they_go_stale() {
        let key = NonceKey::new([7; 32]);
        let n = key.issue(1_000, [1; 8]);
        assert_eq!(
            key.check(&n, 1_000, 300),
            NonceCheck::Valid { issued_at: 1_000 }
        );
        assert_eq!(
            key.check(&n, 1_300, 300),
            NonceCheck::Valid { issued_at: 1_000 }
        );
        assert_eq!(key.check(&n, 1_301, 300), NonceCheck::Stale);
        assert_eq!(
            key.check(&n, 900, 300),
            NonceCheck::Stale,
            "clock went back"
        );
    }

    #[test]
    fn forged_or_foreign_nonces_are_invalid() {
        let key = NonceKey::new([7; 32]);
        let other = NonceKey::new([8; 32]);
        let n = key.issue(1_000, [1; 8]);
        assert_eq!(other.check(&n, 1_000, 300), NonceCheck::Invalid);
        let mut bytes = n.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key.check(std::str::from_utf8(&bytes).unwrap(), 1_000, 300),
            NonceCheck::Invalid
        );
        assert_eq!(
            key.check("dcd98b7102dd2f0e8b11d0f600bfb0c093", 1_000, 300),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn nonce_counts_must_grow() {
        let counts = NonceCounts::default();
        assert!(counts.advance("n", 1, 100));
        assert!(!counts.advance("n", 1, 100), "replayed nc");
        assert!(counts.advance("n", 3, 100));
        assert!(!counts.advance("n", 2, 100));
        counts.sweep(101);
        assert!(counts.is_empty());
    }
}
