//! Events an operator is told about: a dial peer going down or coming back, a
//! cluster node joining or lost, a source banned or throttled, a refused reload,
//! a call that sounded bad. Each one is logged, kept among the recent ones
//! (`GET /api/events`, the status page) and handed to the webhooks that want it
//! ([`crate::webhook`]). Emitting never waits: the webhooks read a broadcast
//! channel on their own tasks.
//!
//! One stream per process, like the metrics: events start deep in the registrar's
//! guard and the peer table, which have no handle on the node.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::broadcast;

/// Every kind of event, as `[[webhook]] events` names them.
pub const KINDS: [&str; 9] = [
    "peer_up",
    "peer_down",
    "failover",
    "node_joined",
    "node_lost",
    "ban",
    "registration_flood",
    "reload_failed",
    "call_quality",
];

/// Recent events kept for the API and the status page.
const KEEP: usize = 200;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// Unix milliseconds.
    pub at: i64,
    /// The node it happened on.
    pub node: String,
    /// One line for people.
    pub message: String,
    /// The particulars, for scripts.
    pub detail: serde_json::Value,
}

pub struct Events {
    node: OnceLock<String>,
    /// When each rate-limited event last went out, by its key.
    last: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    recent: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
}

/// The process's events.
pub fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(|| Events {
        node: OnceLock::new(),
        last: Mutex::default(),
        recent: Mutex::new(VecDeque::with_capacity(KEEP)),
        tx: broadcast::channel(1024).0,
    })
}

impl Events {
    /// Names the node events come from (once, at start).
    pub fn set_node(&self, name: &str) {
        let _ = self.node.set(name.to_owned());
    }

    pub fn emit(&self, kind: &'static str, message: String, detail: serde_json::Value) {
        debug_assert!(KINDS.contains(&kind), "{kind}");
        let event = Event {
            kind,
            at: crate::runtime::unix_now_ms(),
            node: self.node.get().cloned().unwrap_or_default(),
            message,
            detail,
        };
        tracing::warn!(event = kind, "{}", event.message);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        // No receiver (no webhook) is fine.
        let _ = self.tx.send(event);
    }

    /// [`Events::emit`], unless an event with the same `key` went out less than
    /// `every` ago: a dead peer fails over every call, and one event per peer
    /// now and then says it as well as thousands.
    pub fn emit_at_most_every(
        &self,
        key: String,
        every: std::time::Duration,
        kind: &'static str,
        message: String,
        detail: serde_json::Value,
    ) {
        let now = std::time::Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < every)
            {
                return;
            }
            last.insert(key, now);
        }
        self.emit(kind, message, detail);
    }

    /// The recent events, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// The legs of an ended call whose estimated MOS is under `threshold`, from its
/// CDR's media column: `(leg, mos)`.
pub fn poor_legs(media: &str, threshold: f64) -> Vec<(&'static str, f64)> {
    let Ok(media) = serde_json::from_str::<serde_json::Value>(media) else {
        return Vec::new();
    };
    ["caller", "callee"]
        .into_iter()
        .filter_map(|leg| Some((leg, media[leg]["mos"].as_f64()?)))
        .filter(|(_, mos)| *mos < threshold)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_in_order_and_broadcast() {
        let e = Events {
            node: OnceLock::new(),
            last: Mutex::default(),
            recent: Mutex::new(VecDeque::new()),
            tx: broadcast::channel(8).0,
        };
        e.set_node("n1");
        let mut rx = e.subscribe();
        for i in 0..(KEEP + 5) {
            e.emit("ban", format!("ban {i}"), serde_json::json!({ "i": i }));
        }
        let recent = e.recent();
        assert_eq!(recent.len(), KEEP);
        assert_eq!(recent[0].message, "ban 5");
        assert_eq!(recent[KEEP - 1].node, "n1");
        // A slow receiver loses the oldest, never blocks the sender.
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn poor_legs_are_those_under_the_threshold() {
        let media = r#"{"caller":{"mos":4.4},"callee":{"mos":2.9}}"#;
        assert_eq!(poor_legs(media, 3.6), vec![("callee", 2.9)]);
        assert!(poor_legs(r#"{"caller":{"mos":null}}"#, 3.6).is_empty());
        assert!(poor_legs("not json", 3.6).is_empty());
    }
}
