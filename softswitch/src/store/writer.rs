//! Group commit. Registrations are answered only after their binding is committed
//! (design principle 4); committing each one alone would cost one fsync per REGISTER.
//! The writer task takes everything queued while the previous commit ran and commits
//! it in one transaction, then runs each request's completion. At low load a batch is
//! one request and nothing waits; under load the batches grow by themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::{Change, Store, StoreError};

/// Called once the batch holding the request is committed (or failed).
pub type Completion = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

struct Job {
    changes: Vec<Change>,
    done: Completion,
}

/// Largest number of changes per transaction.
const MAX_BATCH: usize = 2_000;

/// Requests waiting for a commit; past this the registrar answers 503 rather than queue
/// without bound.
pub const QUEUE_DEPTH: usize = 50_000;

#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub changes: AtomicU64,
    pub failures: AtomicU64,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

#[derive(Debug, thiserror::Error)]
#[error("the database write queue is full")]
pub struct QueueFull {
    /// The changes that were not queued, for a caller that writes them another way.
    pub changes: Vec<Change>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Store, node: String) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(WriterStats::default());
        tokio::spawn(run(store, node, rx, stats.clone()));
        Writer { tx, stats }
    }

    /// Queues changes; `done` runs after they are durable.
    pub fn submit(&self, changes: Vec<Change>, done: Completion) -> Result<(), QueueFull> {
        self.tx
            .try_send(Job { changes, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    let closed = self.tx.is_closed();
                    if closed {
                        (job.done)(Err(Arc::new(StoreError::WriterGone)));
                    }
                    QueueFull {
                        changes: job.changes,
                    }
                }
            })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Waits until everything submitted so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .tx
            .send(Job {
                changes: Vec::new(),
                done: Box::new(move |_| {
                    let _ = tx.send(());
                }),
            })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

async fn run(store: Store, node: String, mut rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    let mut changes: Vec<Change> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let mut count = batch[0].changes.len();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.changes.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        for job in &mut batch {
            changes.append(&mut job.changes);
        }
        let result = if changes.is_empty() {
            Ok(())
        } else {
            store.apply(&changes, &node).await.map_err(Arc::new)
        };
        match &result {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .changes
                    .fetch_add(changes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, changes = changes.len(), "database commit failed");
            }
        }
        changes.clear();
        for job in batch.drain(..) {
            (job.done)(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::Binding;
    use crate::sip::transaction::TransportKind;

    fn binding(i: usize) -> Binding {
        Binding {
            aor: format!("u{i}@pbx.local"),
            contact: format!("sip:u{i}@192.0.2.1:5060"),
            expires_at: 10_000,
            call_id: format!("c{i}"),
            cseq: 1,
            q: None,
            instance: None,
            reg_id: None,
            path: vec![],
            transport: TransportKind::Udp,
            source: "192.0.2.1:5060".parse().unwrap(),
            user_agent: String::new(),
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn many_submissions_commit_in_few_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/w.db", dir.path().display()), true)
            .await
            .unwrap();
        let writer = Writer::spawn(store.clone(), "n1".into());
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..500 {
            let tx = tx.clone();
            writer
                .submit(
                    vec![Change::Upsert(binding(i))],
                    Box::new(move |r| tx.send(r.is_ok()).unwrap()),
                )
                .unwrap();
        }
        for _ in 0..500 {
            assert!(rx.recv().await.unwrap());
        }
        assert_eq!(store.load_bindings(0).await.unwrap().len(), 500);
        let commits = writer.stats().commits.load(Ordering::Relaxed);
        assert!(
            commits < 500,
            "{commits} commits for 500 submissions: no grouping"
        );
    }
}
