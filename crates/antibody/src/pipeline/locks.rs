//! Per-resource serialisation within one process; across replicas, `Journal::hold` adds a lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per-resource serialisation within this process: never two remediations of one resource at once.
#[derive(Default)]
pub(super) struct ResourceLocks {
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(super) struct ResourceGuard<'a> {
    locks: &'a ResourceLocks,
    key: String,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl ResourceLocks {
    pub(super) async fn lock(&self, key: String) -> ResourceGuard<'_> {
        let lock = self
            .held
            .lock()
            .expect("resource lock table poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        ResourceGuard {
            locks: self,
            key,
            lock: Some(lock),
            guard: Some(guard),
        }
    }
}

impl Drop for ResourceGuard<'_> {
    fn drop(&mut self) {
        // Release first, then forget the entry if nobody else holds or waits for it.
        self.guard.take();
        let lock = self.lock.take();
        let mut held = self
            .locks
            .held
            .lock()
            .expect("resource lock table poisoned");
        if lock.is_some_and(|lock| Arc::strong_count(&lock) == 2) {
            held.remove(&self.key);
        }
    }
}
