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
    pub async fn open(store: Store, node: String) -> Result<PersistentDb, StoreError> {
        let map = load_all(&store).await?;
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
                let (family, key) = match &w {
                    Write::Put(f, k, _) | Write::Delete(f, k) => (f.as_str(), k.as_str()),
                };
                let result = match (result, &store) {
                    (Ok(()), Store::Postgres(pool)) => {
                        super::share::notify(
                            pool,
                            super::share::ASTDB,
                            super::share::payloads(&node, [family, key]),
                        )
                        .await
                    }
                    (r, _) => r.map_err(StoreError::from),
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

    /// Takes in an entry another node changed, as the database now holds it.
    pub fn refresh(&self, family: String, key: String, value: Option<String>) {
        let mut map = self.map();
        match value {
            Some(v) => map.insert((family, key), v),
            None => map.remove(&(family, key)),
        };
    }

    /// Replaces everything with what the database holds.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = load_all(store).await?;
        *self.map() = fresh;
        Ok(())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn load_all(store: &Store) -> Result<BTreeMap<(String, String), String>, StoreError> {
    let rows: Vec<(String, String, String)> = on_pool!(store, pool =>
        sqlx::query_as("SELECT family, key, value FROM astdb").fetch_all(pool).await)?;
    Ok(rows.into_iter().map(|(f, k, v)| ((f, k), v)).collect())
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
