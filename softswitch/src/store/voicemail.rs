//! The `voicemail` table: every message's metadata, folder and sound file, so any
//! node lists, counts, moves and deletes the messages another node filed. Reads are
//! served from memory because the voicemail machines run under a shard lock; writes
//! change memory at once and reach the database in the background, in order, each
//! batch followed by a `NOTIFY` naming its mailboxes so the other nodes re-read them
//! (see [`super::share`]). The sound files stay in the spool directory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use sqlx::{QueryBuilder, Row};
use tokio::sync::mpsc;

use super::{Store, StoreError, on_pool};
use crate::voicemail::MailboxId;
use crate::voicemail::spool::{INBOX, Meta, OLD};

/// One message as the table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub folder: &'static str,
    pub msgnum: u32,
    /// The sound file, relative to the spool directory.
    pub recording: String,
    /// With `msg_id` set: the row's key.
    pub meta: Meta,
}

enum Write {
    Put(MailboxId, Stored),
    Delete(MailboxId, String),
}

/// The folder names the table may hold, as the spool's constants.
fn folder(name: &str) -> Option<&'static str> {
    [INBOX, OLD].into_iter().find(|f| *f == name)
}

pub struct VoicemailIndex {
    map: Mutex<BTreeMap<MailboxId, Vec<Stored>>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl VoicemailIndex {
    /// Loads every message and starts the background writer. Needs a tokio runtime.
    pub async fn open(store: Store, node: String) -> Result<VoicemailIndex, StoreError> {
        let map = load(&store, None).await?;
        let (tx, rx) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(write_loop(store, node, rx));
        Ok(VoicemailIndex {
            map: Mutex::new(map),
            writes: tx,
        })
    }

    /// The messages of a mailbox, in no particular order.
    pub fn messages(&self, mailbox: &MailboxId) -> Vec<Stored> {
        self.map().get(mailbox).cloned().unwrap_or_default()
    }

    /// Files or moves a message (its `meta.msg_id` is the key).
    pub fn put(&self, mailbox: &MailboxId, msg: Stored) {
        {
            let mut map = self.map();
            let list = map.entry(mailbox.clone()).or_default();
            list.retain(|m| m.meta.msg_id != msg.meta.msg_id);
            list.push(msg.clone());
        }
        let _ = self.writes.send(Write::Put(mailbox.clone(), msg));
    }

    pub fn delete(&self, mailbox: &MailboxId, msg_id: &str) {
        if let Some(list) = self.map().get_mut(mailbox) {
            list.retain(|m| m.meta.msg_id != msg_id);
        }
        let _ = self
            .writes
            .send(Write::Delete(mailbox.clone(), msg_id.to_owned()));
    }

    /// Re-reads one mailbox as the database holds it (another node changed it).
    pub async fn reload_mailbox(
        &self,
        store: &Store,
        mailbox: &MailboxId,
    ) -> Result<(), StoreError> {
        let fresh = load(store, Some(mailbox)).await?;
        let mut map = self.map();
        match fresh.into_values().next() {
            Some(list) => map.insert(mailbox.clone(), list),
            None => map.remove(mailbox),
        };
        Ok(())
    }

    /// Replaces everything with what the database holds.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = load(store, None).await?;
        *self.map() = fresh;
        Ok(())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<MailboxId, Vec<Stored>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes in submission order. Whatever queued while the previous batch committed
/// goes in one transaction, then one announcement per mailbox, so a node hearing
/// of a change re-reads it once.
async fn write_loop(store: Store, node: String, mut rx: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = match commit(&store, &node, &batch).await {
            Ok(()) => announce(&store, &node, &batch).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, writes = batch.len(), "could not store a voicemail change");
        }
    }
}

async fn commit(store: &Store, node: &str, batch: &[Write]) -> Result<(), StoreError> {
    let now = crate::runtime::unix_now();
    on_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        for w in batch {
            match w {
                Write::Put(mb, m) => {
                    sqlx::query(
                        "INSERT INTO voicemail (msg_id, mailbox, mailbox_context, folder, msgnum, \
                         recording, callerid, origtime, duration, exten, context, node, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                         ON CONFLICT (msg_id) DO UPDATE SET folder = excluded.folder, \
                         msgnum = excluded.msgnum, recording = excluded.recording, \
                         callerid = excluded.callerid, duration = excluded.duration, \
                         node = excluded.node, updated_at = excluded.updated_at",
                    )
                    .bind(&m.meta.msg_id).bind(&mb.number).bind(&mb.context)
                    .bind(m.folder).bind(i64::from(m.msgnum)).bind(&m.recording)
                    .bind(&m.meta.callerid).bind(m.meta.origtime)
                    .bind(i64::try_from(m.meta.duration).unwrap_or(i64::MAX))
                    .bind(&m.meta.exten).bind(&m.meta.context).bind(node).bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Write::Delete(_, msg_id) => {
                    sqlx::query("DELETE FROM voicemail WHERE msg_id = $1")
                        .bind(msg_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    })
}

async fn announce(store: &Store, node: &str, batch: &[Write]) -> Result<(), StoreError> {
    let Store::Postgres(pool) = store else {
        return Ok(());
    };
    let mailboxes: BTreeSet<String> = batch
        .iter()
        .map(|w| match w {
            Write::Put(mb, _) | Write::Delete(mb, _) => mb.to_string(),
        })
        .collect();
    for mb in mailboxes {
        super::share::notify(
            pool,
            super::share::MAILBOX,
            super::share::payloads(node, [mb.as_str()]),
        )
        .await?;
    }
    Ok(())
}

async fn load(
    store: &Store,
    only: Option<&MailboxId>,
) -> Result<BTreeMap<MailboxId, Vec<Stored>>, StoreError> {
    on_pool!(store, pool => {
        let mut qb = QueryBuilder::new(
            "SELECT msg_id, mailbox, mailbox_context, folder, msgnum, recording, \
             callerid, origtime, duration, exten, context FROM voicemail",
        );
        if let Some(mb) = only {
            qb.push(" WHERE mailbox = ");
            qb.push_bind(mb.number.clone());
            qb.push(" AND mailbox_context = ");
            qb.push_bind(mb.context.clone());
        }
        let rows = qb.build().fetch_all(pool).await?;
        let mut map: BTreeMap<MailboxId, Vec<Stored>> = BTreeMap::new();
        for row in &rows {
            let corrupt = |detail: String| StoreError::Corrupt {
                table: "voicemail",
                detail,
            };
            let name: String = row.try_get("folder")?;
            let folder = folder(&name).ok_or_else(|| corrupt(format!("folder {name}")))?;
            let msgnum: i64 = row.try_get("msgnum")?;
            let duration: i64 = row.try_get("duration")?;
            let mailbox = MailboxId {
                number: row.try_get("mailbox")?,
                context: row.try_get("mailbox_context")?,
            };
            map.entry(mailbox).or_default().push(Stored {
                folder,
                msgnum: u32::try_from(msgnum).map_err(|_| corrupt(format!("msgnum {msgnum}")))?,
                recording: row.try_get("recording")?,
                meta: Meta {
                    callerid: row.try_get("callerid")?,
                    origtime: row.try_get("origtime")?,
                    duration: u64::try_from(duration).unwrap_or(0),
                    exten: row.try_get("exten")?,
                    context: row.try_get("context")?,
                    msg_id: row.try_get("msg_id")?,
                },
            });
        }
        Ok::<_, StoreError>(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, folder: &'static str, n: u32) -> Stored {
        Stored {
            folder,
            msgnum: n,
            recording: format!("default/1001/{folder}/msg{n:04}.wav"),
            meta: Meta {
                callerid: "<1002>".into(),
                origtime: 1_790_000_000,
                duration: 4,
                exten: "1001".into(),
                context: "internal".into(),
                msg_id: id.into(),
            },
        }
    }

    #[tokio::test]
    async fn messages_are_kept_moved_and_deleted_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::connect(&url, false).await.unwrap();
        let mb = MailboxId::parse("1001").unwrap();
        let index = VoicemailIndex::open(store.clone(), "n1".into())
            .await
            .unwrap();
        index.put(&mb, message("a", INBOX, 0));
        index.put(&mb, message("b", INBOX, 1));
        index.put(&mb, message("a", OLD, 0));
        index.delete(&mb, "b");
        assert_eq!(index.messages(&mb), vec![message("a", OLD, 0)]);

        // The writer is in order and in the background: another node's copy
        // re-read once it caught up holds what this one did.
        let other = VoicemailIndex::open(store.clone(), "n2".into())
            .await
            .unwrap();
        let caught_up = |want: Vec<Stored>| {
            let (other, store, mb) = (&other, &store, &mb);
            async move {
                for _ in 0..250 {
                    other.reload_mailbox(store, mb).await.unwrap();
                    if other.messages(mb) == want {
                        return true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                false
            }
        };
        assert!(caught_up(vec![message("a", OLD, 0)]).await);
        index.delete(&mb, "a");
        assert!(caught_up(Vec::new()).await, "an emptied mailbox is dropped");
    }
}
