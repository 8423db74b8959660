//! What the interpreter needs from the world, injected so the core never reads a
//! clock, a random source or a database by itself (design.md "Sans-IO cores").

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::vars::Globals;

/// The AstDB (`family/key` → value, §1). The switch backs it with its SQL store.
pub trait AstDb {
    fn get(&self, family: &str, key: &str) -> Option<String>;
    fn put(&mut self, family: &str, key: &str, value: &str);
    /// Removes a key and returns what it held.
    fn delete(&mut self, family: &str, key: &str) -> Option<String>;
    /// Every `(key, value)` under `family`, sorted by key.
    fn keys(&self, family: &str) -> Vec<(String, String)>;
}

/// An in-memory AstDB for tests and the dry-run trace.
#[derive(Debug, Clone, Default)]
pub struct MemoryDb {
    map: BTreeMap<(String, String), String>,
}

impl MemoryDb {
    pub fn new() -> Self {
        Self::default()
    }
}

impl AstDb for MemoryDb {
    fn get(&self, family: &str, key: &str) -> Option<String> {
        self.map
            .get(&(family.to_string(), key.to_string()))
            .cloned()
    }
    fn put(&mut self, family: &str, key: &str, value: &str) {
        self.map
            .insert((family.to_string(), key.to_string()), value.to_string());
    }
    fn delete(&mut self, family: &str, key: &str) -> Option<String> {
        self.map.remove(&(family.to_string(), key.to_string()))
    }
    fn keys(&self, family: &str) -> Vec<(String, String)> {
        self.map
            .iter()
            .filter(|((f, _), _)| f == family)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The interpreter's view of the outside world for one `resume` call.
pub trait Env {
    /// Wall-clock time (EPOCH, STRFTIME, timed includes, GotoIfTime).
    fn now(&self) -> Timestamp;
    /// The local zone for time specs and STRFTIME without an explicit zone.
    fn time_zone(&self) -> TimeZone {
        TimeZone::system()
    }
    /// A uniformly distributed random number (RAND).
    fn random(&mut self) -> u64;
    fn db(&mut self) -> &mut dyn AstDb;
    fn globals(&self) -> &Globals;
    /// `DEVICE_STATE(SIP/1002)`: `NOT_INUSE`, `INUSE`, `UNAVAILABLE` (not
    /// registered) or `UNKNOWN`, as Asterisk names them.
    fn device_state(&self, _device: &str) -> String {
        "UNKNOWN".into()
    }
}

/// A self-contained environment with a clock you move by hand: the trace command
/// and the tests use it.
#[derive(Debug, Clone)]
pub struct SimEnv {
    pub now: Timestamp,
    pub tz: TimeZone,
    pub db: MemoryDb,
    pub globals: Globals,
    rng: u64,
}

impl SimEnv {
    pub fn new(now: Timestamp, tz: TimeZone) -> Self {
        SimEnv {
            now,
            tz,
            db: MemoryDb::new(),
            globals: Globals::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Moves the virtual clock forward.
    pub fn advance(&mut self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            let nanos = (seconds * 1e9) as i64;
            self.now = self
                .now
                .checked_add(jiff::SignedDuration::from_nanos(nanos))
                .unwrap_or(self.now);
        }
    }
}

impl Env for SimEnv {
    fn now(&self) -> Timestamp {
        self.now
    }
    fn time_zone(&self) -> TimeZone {
        self.tz.clone()
    }
    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic, so traces and tests repeat.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn db(&mut self) -> &mut dyn AstDb {
        &mut self.db
    }
    fn globals(&self) -> &Globals {
        &self.globals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_db_round_trip() {
        let mut db = MemoryDb::new();
        db.put("cf", "1001", "5551234");
        assert_eq!(db.get("cf", "1001").as_deref(), Some("5551234"));
        assert_eq!(db.keys("cf").len(), 1);
        assert_eq!(db.delete("cf", "1001").as_deref(), Some("5551234"));
        assert!(db.get("cf", "1001").is_none());
    }

    #[test]
    fn sim_clock_moves() {
        let mut e = SimEnv::new(Timestamp::UNIX_EPOCH, TimeZone::UTC);
        e.advance(2.5);
        assert_eq!(e.now().as_millisecond(), 2500);
        assert_ne!(e.random(), e.random());
    }
}
