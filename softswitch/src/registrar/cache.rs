//! The in-memory location service: bindings by AOR, sharded so concurrent workers rarely
//! contend. The database is the durable copy; this is what lookups read.

use std::collections::HashMap;
use std::sync::Mutex;

use super::binding::Binding;

const SHARDS: usize = 64;

#[derive(Debug)]
pub struct LocationCache {
    shards: Vec<Mutex<HashMap<String, Vec<Binding>>>>,
}

impl Default for LocationCache {
    fn default() -> Self {
        LocationCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl LocationCache {
    fn shard(&self, aor: &str) -> &Mutex<HashMap<String, Vec<Binding>>> {
        let h = aor.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        &self.shards[h as usize % SHARDS]
    }

    /// Runs `f` on the AOR's bindings under its shard lock; an empty list afterwards
    /// removes the AOR.
    pub fn with_aor<R>(&self, aor: &str, f: impl FnOnce(&mut Vec<Binding>) -> R) -> R {
        let mut map = self.shard(aor).lock().expect("location lock");
        let list = map.entry(aor.to_owned()).or_default();
        let r = f(list);
        if list.is_empty() {
            map.remove(aor);
        }
        r
    }

    /// The AOR's bindings that are still valid at `now`.
    pub fn lookup(&self, aor: &str, now: i64) -> Vec<Binding> {
        let map = self.shard(aor).lock().expect("location lock");
        map.get(aor)
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces the contents with bindings loaded from the database.
    pub fn load(&self, bindings: Vec<Binding>) {
        for shard in &self.shards {
            shard.lock().expect("location lock").clear();
        }
        for b in bindings {
            let aor = b.aor.clone();
            self.with_aor(&aor, |list| list.push(b));
        }
    }

    /// Removes bindings that expired at or before `now`; returns them.
    pub fn sweep(&self, now: i64) -> Vec<Binding> {
        let mut gone = Vec::new();
        for shard in &self.shards {
            let mut map = shard.lock().expect("location lock");
            map.retain(|_, list| {
                list.retain(|b| {
                    let keep = b.expires_at > now;
                    if !keep {
                        gone.push(b.clone());
                    }
                    keep
                });
                !list.is_empty()
            });
        }
        gone
    }

    pub fn all(&self) -> Vec<Binding> {
        let mut out: Vec<Binding> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .expect("location lock")
                    .values()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| a.aor.cmp(&b.aor).then(a.contact.cmp(&b.contact)));
        out
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .expect("location lock")
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
