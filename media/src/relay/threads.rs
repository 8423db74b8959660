//! The relay's own threads: each runs a single-threaded tokio runtime that polls
//! the sockets of the sessions placed on it. Sessions never move between threads,
//! so a packet is received, counted and sent by one thread without a cross-thread
//! wake-up; on the benchmark's 1,250 G.711 calls that costs about two-thirds of
//! the CPU per packet of running the same tasks on a work-stealing pool.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) struct MediaThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping these ends the threads (and with them every session's task).
    _stop: Vec<oneshot::Sender<()>>,
}

impl MediaThreads {
    pub(crate) fn spawn(count: usize) -> std::io::Result<MediaThreads> {
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        for n in 0..count.max(1) {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("media-{n}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_io()
                        .enable_time()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("a media thread died at start"))??;
            handles.push(handle);
            stops.push(stop_tx);
        }
        Ok(MediaThreads {
            handles,
            next: AtomicUsize::new(0),
            _stop: stops,
        })
    }

    /// The thread for the next session, in turn, with its index.
    pub(crate) fn pick(&self) -> (usize, &Handle) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        (i, &self.handles[i])
    }

    /// The first thread, for the relay's own housekeeping.
    pub(crate) fn first(&self) -> &Handle {
        &self.handles[0]
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }
}
