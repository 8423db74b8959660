//! Keeping every node's memory copies in step when several nodes share one
//! PostgreSQL database. Lookups read memory (the location cache, the AstDB map), so a
//! change committed by one node must reach the others' memory: each commit that
//! changes them is followed by a `NOTIFY` naming what changed, and every node — the
//! writer too — re-reads
//! those rows. Re-reading rather than trusting the payload makes every node converge
//! on what the database holds, whatever order the notifications crossed in.

use sqlx::postgres::{PgListener, PgPool};

use super::StoreError;
use crate::registrar::Binding;

/// Channel for location changes; a payload is `node` then the changed AORs, one per
/// line.
pub const LOCATION: &str = "softswitch_location";
/// Channel for AstDB changes; a payload is `node`, `family` and `key`, one per line.
pub const ASTDB: &str = "softswitch_astdb";

/// Channel for voicemail changes; a payload is `node` and the mailbox
/// (`number@context`). The other nodes re-read the mailbox's rows of the
/// `voicemail` table and send their subscribers a fresh message summary.
pub const MAILBOX: &str = "softswitch_mailbox";

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_000;

/// The payloads that announce `keys` as changed by `node`: as few as fit the limit.
pub fn payloads<'a>(node: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = node.to_owned();
    let mut has_key = false;
    for key in keys {
        if has_key && current.len() + 1 + key.len() > MAX_PAYLOAD {
            out.push(std::mem::replace(&mut current, node.to_owned()));
        }
        current.push('\n');
        current.push_str(key);
        has_key = true;
    }
    if has_key {
        out.push(current);
    }
    out
}

/// A change another node (or this one) committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// These AORs' bindings changed.
    Location(Vec<String>),
    /// This AstDB entry changed.
    AstDb { family: String, key: String },
    /// A node changed this mailbox's messages.
    Mailbox { origin: String, mailbox: String },
}

impl Shared {
    fn parse(channel: &str, payload: &str) -> Option<Shared> {
        let mut lines = payload.split('\n');
        let node = lines.next()?;
        match channel {
            MAILBOX => Some(Shared::Mailbox {
                origin: node.to_owned(),
                mailbox: lines.next()?.to_owned(),
            }),
            LOCATION => Some(Shared::Location(lines.map(str::to_owned).collect())),
            ASTDB => Some(Shared::AstDb {
                family: lines.next()?.to_owned(),
                key: lines.next()?.to_owned(),
            }),
            _ => None,
        }
    }
}

/// One node's subscription to the others' changes.
pub struct Follower {
    listener: PgListener,
}

impl Follower {
    pub async fn connect(pool: &PgPool) -> Result<Follower, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all([LOCATION, ASTDB, MAILBOX]).await?;
        Ok(Follower { listener })
    }

    /// The next change. `Ok(None)` means the connection dropped and notifications may
    /// have been missed: the caller must re-read everything (the listener reconnects
    /// on the next call).
    pub async fn next(&mut self) -> Result<Option<Shared>, StoreError> {
        loop {
            match self.listener.try_recv().await? {
                None => return Ok(None),
                Some(n) => {
                    if let Some(change) = Shared::parse(n.channel(), n.payload()) {
                        return Ok(Some(change));
                    }
                }
            }
        }
    }
}

/// Announces committed changes. It follows the commit rather than riding in its
/// transaction because the writer's transaction is generic over both backends; a node
/// that dies between the two leaves the others stale until their next full re-read
/// (at reconnect, and every [`RESYNC`]).
pub async fn notify(pool: &PgPool, channel: &str, payloads: Vec<String>) -> Result<(), StoreError> {
    for payload in payloads {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// How often a node re-reads everything shared, as a backstop for a notification
/// that was never sent.
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(60);

impl super::Store {
    /// The current bindings of these AORs, unexpired at `now`, by AOR; an AOR with
    /// none is listed with an empty list so the caller clears it.
    pub async fn bindings_of(
        &self,
        aors: &[String],
        now: i64,
    ) -> Result<Vec<(String, Vec<Binding>)>, StoreError> {
        let mut out: Vec<(String, Vec<Binding>)> =
            aors.iter().map(|a| (a.clone(), Vec::new())).collect();
        for b in self.load_bindings_where(aors, now).await? {
            if let Some((_, list)) = out.iter_mut().find(|(a, _)| *a == b.aor) {
                list.push(b);
            }
        }
        Ok(out)
    }

    /// One AstDB entry as the database holds it.
    pub async fn astdb_get(&self, family: &str, key: &str) -> Result<Option<String>, StoreError> {
        let v = super::on_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT value FROM astdb WHERE family = $1 AND key = $2")
            .bind(family)
            .bind(key)
            .fetch_optional(pool)
            .await)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_split_under_the_limit_and_name_the_node() {
        let keys: Vec<String> = (0..2_000).map(|i| format!("{i:04}@pbx.local")).collect();
        let ps = payloads("node-a", keys.iter().map(String::as_str));
        assert!(ps.len() > 1);
        let mut seen = Vec::new();
        for p in &ps {
            assert!(p.len() < 8_000);
            match Shared::parse(LOCATION, p) {
                Some(Shared::Location(aors)) => seen.extend(aors),
                other => panic!("{other:?}"),
            }
            assert!(p.starts_with("node-a\n"));
        }
        assert_eq!(seen, keys);
        assert!(payloads("node-a", []).is_empty());
    }

    #[test]
    fn astdb_payloads_carry_family_and_key() {
        let p = payloads("n", ["CFIM", "1001"]);
        assert_eq!(
            Shared::parse(ASTDB, &p[0]),
            Some(Shared::AstDb {
                family: "CFIM".into(),
                key: "1001".into()
            })
        );
        assert_eq!(Shared::parse(ASTDB, "n\nonly-family"), None);
        assert_eq!(
            Shared::parse(MAILBOX, "node-a\n1002@default"),
            Some(Shared::Mailbox {
                origin: "node-a".into(),
                mailbox: "1002@default".into()
            })
        );
        assert_eq!(Shared::parse("other", "n\nx"), None);
    }
}
