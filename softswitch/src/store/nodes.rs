//! The nodes table: who shares this database, and when each last said it was alive.

use serde::Serialize;

use super::cdr::{Cdr, OpenCall};
use super::{Store, StoreError, on_pool};

/// A node missing this many milliseconds of heartbeats is taken as lost (the
/// heartbeat is every second, so three in a row went missing).
pub const LOST_AFTER_MS: i64 = 3_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct NodeRow {
    pub name: String,
    pub sip: String,
    pub admin: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// What the node said last: `up`, `draining` or `stopped`.
    pub state: String,
}

impl NodeRow {
    /// Its state as of `now_ms`: what it said, or `lost` when it went quiet
    /// without saying it stopped.
    pub fn state_at(&self, now_ms: i64) -> &str {
        if self.state != "stopped" && now_ms - self.heartbeat_at > LOST_AFTER_MS {
            "lost"
        } else {
            &self.state
        }
    }
}

impl Store {
    /// Writes this node's row (its heartbeat). A heartbeat still in flight when
    /// the node said it stopped does not undo that: a stopped row changes only
    /// for a new life of the node (another `started_at`).
    pub async fn heartbeat(&self, n: &NodeRow) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO nodes (name, sip, admin, started_at, heartbeat_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET sip = excluded.sip, admin = excluded.admin, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             state = excluded.state \
             WHERE nodes.state <> 'stopped' OR nodes.started_at <> excluded.started_at")
            .bind(&n.name).bind(&n.sip).bind(&n.admin).bind(n.started_at)
            .bind(n.heartbeat_at).bind(&n.state)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Says the node stopped on purpose (its started_at is left as it was).
    pub async fn mark_stopped(&self, n: &NodeRow) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE nodes SET state = 'stopped', heartbeat_at = $1 WHERE name = $2")
            .bind(n.heartbeat_at).bind(&n.name)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Turns the open calls of nodes that are gone into `node_lost` CDRs, ended at
    /// each node's last heartbeat: nodes lost as of `now_ms`, nodes that stopped,
    /// and `restarting` (this node's earlier life, whose heartbeat is still fresh).
    /// The rows are deleted and the CDRs written in one transaction, so when several
    /// survivors try at once each call is closed exactly once.
    pub async fn close_lost_calls(
        &self,
        now_ms: i64,
        restarting: Option<&str>,
    ) -> Result<Vec<Cdr>, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let gone: Vec<(String, i64)> = sqlx::query_as(
                "SELECT name, heartbeat_at FROM nodes \
                 WHERE (state <> 'stopped' AND heartbeat_at < $1) OR state = 'stopped' OR name = $2",
            )
            .bind(now_ms - LOST_AFTER_MS)
            .bind(restarting.unwrap_or(""))
            .fetch_all(&mut *tx)
            .await?;
            let mut cdrs = Vec::new();
            for (name, heartbeat_at) in gone {
                let open: Vec<OpenCall> = sqlx::query_as(
                    "DELETE FROM open_calls WHERE node = $1 RETURNING uniqueid, node, start_at, \
                     answer_at, src, dst, dcontext, clid",
                )
                .bind(&name)
                .fetch_all(&mut *tx)
                .await?;
                for call in open {
                    let cdr = call.lost_at(heartbeat_at);
                    super::cdr::bind_cdr!(sqlx::query(super::cdr::INSERT_CDR), &cdr)
                        .execute(&mut *tx)
                        .await?;
                    cdrs.push(cdr);
                }
            }
            tx.commit().await?;
            Ok(cdrs)
        })
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT name, sip, admin, started_at, heartbeat_at, state FROM nodes ORDER BY name")
            .fetch_all(pool).await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, heartbeat_at: i64) -> NodeRow {
        NodeRow {
            name: "n".into(),
            sip: String::new(),
            admin: String::new(),
            started_at: 0,
            heartbeat_at,
            state: state.into(),
        }
    }

    #[test]
    fn a_quiet_node_is_lost_unless_it_said_it_stopped() {
        assert_eq!(row("up", 10_000).state_at(12_000), "up");
        assert_eq!(row("draining", 10_000).state_at(13_000), "draining");
        assert_eq!(row("up", 10_000).state_at(13_001), "lost");
        assert_eq!(row("stopped", 10_000).state_at(99_000), "stopped");
    }
}
