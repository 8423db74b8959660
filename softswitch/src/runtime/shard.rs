//! A shard: one transaction layer behind a short lock, and the one timer task that
//! fires its deadlines. Messages of a call hash to one shard by Call-ID, so the lock is
//! rarely contended and never held across an await.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::call::CallTable;
use crate::sip::transaction::{TimerConfig, TransactionLayer};

pub struct ShardState {
    pub layer: TransactionLayer,
    /// The calls whose Call-IDs hash here (outbound legs are given such Call-IDs).
    pub calls: CallTable,
    /// The deadline the timer task sleeps until.
    pub armed: Option<Instant>,
}

pub struct Shard {
    state: Mutex<ShardState>,
    pub wake: Notify,
}

impl Shard {
    pub fn new(timers: TimerConfig) -> Shard {
        Shard {
            state: Mutex::new(ShardState {
                layer: TransactionLayer::new(timers),
                calls: CallTable::default(),
                armed: None,
            }),
            wake: Notify::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, ShardState> {
        // A panic while holding the lock would be a bug; keep serving rather than
        // poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ShardState {
    /// The earliest deadline of the transactions and the calls.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.layer.poll_timeout(), self.calls.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Picks a shard for a Call-ID (FNV-1a: fast, and good enough to spread random IDs).
pub fn shard_of(call_id: &str, shards: usize) -> usize {
    let h = call_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    (h % shards as u64) as usize
}
