//! A live call as operators see it: `softswitch calls` and the admin API.

use std::time::Instant;

use serde::Serialize;

use super::{Call, LegState, Phase};

#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub uniqueid: String,
    pub src: String,
    pub dst: String,
    pub context: String,
    pub clid: String,
    /// `dialplan`, `ringing`, `answered` or `ending`.
    pub state: &'static str,
    /// The dialplan application running now.
    pub app: String,
    /// Seconds since the INVITE.
    pub age: u64,
    /// Seconds since the answer.
    pub billsec: Option<u64>,
    pub legs: Vec<LegView>,
    /// Live relay counters of both sides (packets, loss, jitter, latched address).
    pub media: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegView {
    pub channel: String,
    pub dialed: String,
    pub contact: String,
    pub state: &'static str,
}

impl Call {
    pub fn view(&self, now: Instant) -> CallView {
        let state = match self.phase {
            Phase::Ended => "ending",
            Phase::Answered => "answered",
            Phase::Setup if self.pending_legs().next().is_some() => "ringing",
            Phase::Setup => "dialplan",
        };
        let start = self.a.started;
        CallView {
            uniqueid: self.uniqueid.clone(),
            src: self.cdr.src.clone(),
            dst: self.cdr.dst.clone(),
            context: self.cdr.dcontext.clone(),
            clid: self.cdr.clid.clone(),
            state,
            app: self.cdr.lastapp.clone(),
            age: now.saturating_duration_since(start).as_secs(),
            billsec: self
                .answered_at
                .map(|t| now.saturating_duration_since(t).as_secs()),
            legs: self
                .legs
                .iter()
                .map(|l| LegView {
                    channel: l.channel.clone(),
                    dialed: l.dialed.clone(),
                    contact: l.target.clone(),
                    state: match l.state {
                        LegState::Calling => "calling",
                        LegState::Early => "early",
                        LegState::Answered => "answered",
                        LegState::Failed(_) => "failed",
                        LegState::Cancelled | LegState::Withdrawn => "cancelled",
                        LegState::Ended => "ended",
                    },
                })
                .collect(),
            media: self
                .relay
                .as_ref()
                .map(|r| r.report())
                .unwrap_or(serde_json::Value::Null),
        }
    }
}
