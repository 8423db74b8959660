//! The `location` table: registrations that survive restarts.

use sqlx::{QueryBuilder, Row};

use super::share;
use super::{Store, StoreError, on_pool};
use crate::registrar::Binding;
use crate::sip::transaction::TransportKind;

/// One write the group-commit writer makes: a location change, or a finished call's
/// record (so CDRs share the registrations' batched commits and shutdown flush).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(Binding),
    Remove {
        aor: String,
        contact: String,
    },
    Cdr(Box<super::cdr::Cdr>),
    /// A call started: its row in `open_calls` until its CDR.
    Opened(Box<super::cdr::OpenCall>),
    /// A call in progress was answered.
    Answered {
        uniqueid: String,
        at: i64,
    },
}

/// Rows per statement: far below SQLite's bound-parameter limit with 14 columns.
const ROWS_PER_STATEMENT: usize = 200;

const COLUMNS: &str = "aor, contact, expires_at, call_id, cseq, q, instance, reg_id, path, transport, source, user_agent, node, updated_at";

fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
        TransportKind::Tls => "tls",
    }
}

fn transport_from(s: &str) -> Option<TransportKind> {
    match s {
        "udp" => Some(TransportKind::Udp),
        "tcp" => Some(TransportKind::Tcp),
        "tls" => Some(TransportKind::Tls),
        _ => None,
    }
}

macro_rules! binding_from_row {
    ($row:expr) => {{
        let row = $row;
        let corrupt = |detail: String| StoreError::Corrupt {
            table: "location",
            detail,
        };
        let transport: String = row.try_get("transport")?;
        let source: String = row.try_get("source")?;
        let path: String = row.try_get("path")?;
        let q: Option<i64> = row.try_get("q")?;
        let reg_id: Option<i64> = row.try_get("reg_id")?;
        let cseq: i64 = row.try_get("cseq")?;
        Binding {
            aor: row.try_get("aor")?,
            contact: row.try_get("contact")?,
            expires_at: row.try_get("expires_at")?,
            call_id: row.try_get("call_id")?,
            cseq: u32::try_from(cseq).map_err(|_| corrupt(format!("cseq {cseq}")))?,
            q: q.and_then(|v| u16::try_from(v).ok()),
            instance: row.try_get("instance")?,
            reg_id: reg_id.and_then(|v| u32::try_from(v).ok()),
            path: serde_json::from_str(&path).map_err(|e| corrupt(format!("path: {e}")))?,
            transport: transport_from(&transport)
                .ok_or_else(|| corrupt(format!("transport {transport}")))?,
            source: source
                .parse()
                .map_err(|_| corrupt(format!("source {source}")))?,
            user_agent: row.try_get("user_agent")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    /// Every binding that has not expired at `now`.
    pub async fn load_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        self.select_bindings(None, now).await
    }

    /// Which node took each binding's last REGISTER, by (AOR, contact).
    pub async fn binding_nodes(
        &self,
    ) -> Result<std::collections::HashMap<(String, String), String>, StoreError> {
        let rows: Vec<(String, String, String)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT aor, contact, node FROM location").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(a, c, n)| ((a, c), n)).collect())
    }

    /// The (AOR, contact) of every binding whose last REGISTER `node` took.
    pub async fn bindings_held_by(&self, node: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT aor, contact FROM location WHERE node = $1")
                .bind(node)
                .fetch_all(pool)
                .await)?;
        Ok(rows)
    }

    /// The unexpired bindings of these AORs only.
    pub(super) async fn load_bindings_where(
        &self,
        aors: &[String],
        now: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        if aors.is_empty() {
            return Ok(Vec::new());
        }
        self.select_bindings(Some(aors), now).await
    }

    async fn select_bindings(
        &self,
        aors: Option<&[String]>,
        now: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        on_pool!(self, pool => {
            let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM location WHERE expires_at > "));
            qb.push_bind(now);
            if let Some(aors) = aors {
                qb.push(" AND aor IN (");
                let mut list = qb.separated(", ");
                for aor in aors {
                    list.push_bind(aor.clone());
                }
                qb.push(")");
            }
            qb.push(" ORDER BY aor, updated_at");
            let rows = qb.build().fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(binding_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Applies a batch in one transaction: one commit (one fsync) for everything queued
    /// while the previous commit ran.
    pub async fn apply(&self, changes: &[Change], node: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (upserts, removals) = last_write_wins(changes);
            for (aor, contact) in removals {
                sqlx::query("DELETE FROM location WHERE aor = $1 AND contact = $2")
                    .bind(aor)
                    .bind(contact)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(format!("INSERT INTO location ({COLUMNS}) "));
                qb.push_values(chunk.iter(), |mut row, b| {
                    row.push_bind(b.aor.clone())
                        .push_bind(b.contact.clone())
                        .push_bind(b.expires_at)
                        .push_bind(b.call_id.clone())
                        .push_bind(b.cseq as i64)
                        .push_bind(b.q.map(i64::from))
                        .push_bind(b.instance.clone())
                        .push_bind(b.reg_id.map(i64::from))
                        .push_bind(serde_json::to_string(&b.path).unwrap_or_else(|_| "[]".into()))
                        .push_bind(transport_name(b.transport))
                        .push_bind(b.source.to_string())
                        .push_bind(b.user_agent.clone())
                        .push_bind(node.to_owned())
                        .push_bind(b.updated_at);
                });
                qb.push(
                    " ON CONFLICT (aor, contact) DO UPDATE SET expires_at = excluded.expires_at, \
                     call_id = excluded.call_id, cseq = excluded.cseq, q = excluded.q, \
                     instance = excluded.instance, reg_id = excluded.reg_id, path = excluded.path, \
                     transport = excluded.transport, source = excluded.source, \
                     user_agent = excluded.user_agent, node = excluded.node, updated_at = excluded.updated_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            super::call_records::write_plan!(tx, &super::call_records::Plan::of(changes));
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        if let Store::Postgres(pool) = self {
            share::notify(pool, share::LOCATION, location_payloads(changes, node)).await?;
        }
        Ok(())
    }

    /// Deletes bindings that expired at or before `now`; returns how many.
    pub async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM location WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}

/// The announcements of the AORs a batch changed.
fn location_payloads(changes: &[Change], node: &str) -> Vec<String> {
    let mut aors: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(b) => Some(b.aor.as_str()),
            Change::Remove { aor, .. } => Some(aor.as_str()),
            _ => None,
        })
        .collect();
    aors.sort_unstable();
    aors.dedup();
    share::payloads(node, aors)
}

/// The final write per (aor, contact) in submission order: a contact registered and
/// removed in the same batch ends up removed, and one multi-row INSERT never names the
/// same key twice (PostgreSQL refuses that).
fn last_write_wins(changes: &[Change]) -> (Vec<&Binding>, Vec<(&str, &str)>) {
    let mut seen = std::collections::HashSet::new();
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for c in changes.iter().rev() {
        let key = match c {
            Change::Upsert(b) => (b.aor.as_str(), b.contact.as_str()),
            Change::Remove { aor, contact } => (aor.as_str(), contact.as_str()),
            _ => continue,
        };
        if !seen.insert(key) {
            continue;
        }
        match c {
            Change::Upsert(b) => upserts.push(b),
            Change::Remove { .. } => removals.push(key),
            _ => {}
        }
    }
    (upserts, removals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, expires_at: i64) -> Binding {
        Binding {
            aor: "1001@pbx.local".into(),
            contact: contact.into(),
            expires_at,
            call_id: "c".into(),
            cseq: 1,
            q: Some(500),
            instance: Some("<urn:uuid:x>".into()),
            reg_id: Some(1),
            path: vec!["<sip:edge;lr>".into()],
            transport: TransportKind::Udp,
            source: "192.0.2.5:5062".parse().unwrap(),
            user_agent: "ua".into(),
            updated_at: 1,
        }
    }

    #[test]
    fn the_last_write_of_a_key_wins() {
        let b = binding("sip:a@h", 10);
        let changes = vec![
            Change::Upsert(b.clone()),
            Change::Remove {
                aor: b.aor.clone(),
                contact: b.contact.clone(),
            },
            Change::Upsert(binding("sip:b@h", 10)),
        ];
        let (ups, rem) = last_write_wins(&changes);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].contact, "sip:b@h");
        assert_eq!(rem, vec![("1001@pbx.local", "sip:a@h")]);
    }

    #[tokio::test]
    async fn bindings_round_trip_through_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/l.db", dir.path().display()), true)
            .await
            .unwrap();
        let a = binding("sip:a@h", 100);
        let mut a2 = a.clone();
        a2.expires_at = 200;
        store
            .apply(
                &[
                    Change::Upsert(a.clone()),
                    Change::Upsert(binding("sip:old@h", 5)),
                ],
                "n1",
            )
            .await
            .unwrap();
        store
            .apply(&[Change::Upsert(a2.clone())], "n1")
            .await
            .unwrap();
        let loaded = store.load_bindings(50).await.unwrap();
        assert_eq!(loaded, vec![a2]);
        assert_eq!(store.delete_expired(50).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn cdrs_commit_in_the_same_batch_as_registrations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/c.db", dir.path().display()), true)
            .await
            .unwrap();
        let cdr = crate::store::cdr::Cdr {
            uniqueid: "1700000000.1".into(),
            node: "n1".into(),
            start_at: 1_700_000_000_000,
            answer_at: Some(1_700_000_002_000),
            end_at: 1_700_000_007_000,
            duration: 7,
            billsec: 5,
            src: "1001".into(),
            dst: "1002".into(),
            dcontext: "internal".into(),
            clid: "<1001>".into(),
            dstchannel: "SIP/1002-00000002".into(),
            lastapp: "Dial".into(),
            disposition: "ANSWERED".into(),
            hangup_cause: 16,
            end_reason: "caller_hangup".into(),
            sip_status: Some(200),
            media: "{}".into(),
            pdd_ms: Some(412),
        };
        store
            .apply(
                &[
                    Change::Upsert(binding("sip:a@h", 100)),
                    Change::Cdr(Box::new(cdr.clone())),
                ],
                "n1",
            )
            .await
            .unwrap();
        assert_eq!(store.recent_cdrs(10).await.unwrap(), vec![cdr]);
        assert_eq!(store.load_bindings(50).await.unwrap().len(), 1);
    }
}
