//! The AstDB behind the dialplan's `DB()` functions. Reads are served from memory,
//! loaded at start, because the interpreter runs under a shard lock and must not wait
//! for a database; writes go to the memory copy at once and to the database in the
//! background, in order, so a restart finds what the dialplan stored.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use super::{Store, StoreError, on_pool};

enum Write {
    Put(String, String, String),
    Delete(String, String),
}

pub struct PersistentDb {
    map: Mutex<BTreeMap<(String, String), String>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl PersistentDb {
    /// Loads every entry and starts the background writer. Needs a tokio runtime.
    pub async fn open(store: Store) -> Result<PersistentDb, StoreError> {
        let rows: Vec<(String, String, String)> = on_pool!(&store, pool =>
            sqlx::query_as("SELECT family, key, value FROM astdb").fetch_all(pool).await)?;
        let map = rows.into_iter().map(|(f, k, v)| ((f, k), v)).collect();
        let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
        tokio::spawn(async move {
            while let Some(w) = rx.recv().await {
                let result = match &w {
                    Write::Put(f, k, v) => on_pool!(&store, pool => sqlx::query(
                        "INSERT INTO astdb (family, key, value) VALUES ($1, $2, $3) \
                         ON CONFLICT (family, key) DO UPDATE SET value = excluded.value")
                        .bind(f).bind(k).bind(v).execute(pool).await.map(|_| ())),
                    Write::Delete(f, k) => on_pool!(&store, pool => sqlx::query(
                        "DELETE FROM astdb WHERE family = $1 AND key = $2")
                        .bind(f).bind(k).execute(pool).await.map(|_| ())),
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "could not store an AstDB change");
                }
            }
        });
        Ok(PersistentDb {
            map: Mutex::new(map),
            writes: tx,
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `&PersistentDb` as the interpreter's AstDB.
pub struct DbHandle<'a>(pub &'a PersistentDb);

impl dialplan::AstDb for DbHandle<'_> {
    fn get(&self, family: &str, key: &str) -> Option<String> {
        self.0.map().get(&(family.into(), key.into())).cloned()
    }
    fn put(&mut self, family: &str, key: &str, value: &str) {
        self.0
            .map()
            .insert((family.into(), key.into()), value.into());
        let _ = self
            .0
            .writes
            .send(Write::Put(family.into(), key.into(), value.into()));
    }
    fn delete(&mut self, family: &str, key: &str) -> Option<String> {
        let old = self.0.map().remove(&(family.into(), key.into()));
        let _ = self.0.writes.send(Write::Delete(family.into(), key.into()));
        old
    }
    fn keys(&self, family: &str) -> Vec<(String, String)> {
        self.0
            .map()
            .iter()
            .filter(|((f, _), _)| f == family)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }
}
