//! The idempotency table in memory, with DynamoDB's semantics: for local runs (`intercom-dev serve`) and tests.

use std::collections::HashMap;
use std::sync::Mutex;

use intercom_webhook::dispatch::{BoxFuture, StepState};

use super::{COMPLETED, Finished, LockItem, Newest, Store, StoreError, Taken, held_by, stands};

/// The table in memory, with its semantics: for local runs
/// (`intercom-dev serve`) and tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, LockItem>>,
    objects: Mutex<HashMap<String, Newest>>,
    pub(crate) steps: Mutex<HashMap<String, (StepState, i64)>>,
}

impl MemoryStore {
    /// The item under `id`, if any.
    pub fn get(&self, id: &str) -> Option<LockItem> {
        self.items().get(id).cloned()
    }

    /// The object item under `id`, if any.
    pub fn newest(&self, id: &str) -> Option<Newest> {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, LockItem>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>> {
        let mut items = self.items();
        let taken = match items.get(&lock.id) {
            Some(existing) if stands(existing, now_ms) => Taken::Refused(Some(existing.clone())),
            _ => {
                items.insert(lock.id.clone(), lock);
                Taken::Yes
            }
        };
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>> {
        let finished = match self.items().get_mut(&id) {
            Some(item) if held_by(item, &owner) => {
                item.status = COMPLETED.to_owned();
                item.expiration = expiration;
                Finished::Done
            }
            _ => Finished::NotOwner,
        };
        Box::pin(std::future::ready(Ok(finished)))
    }

    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
        let mut items = self.items();
        let finished = match items.get(&id) {
            Some(item) if held_by(item, &owner) => {
                items.remove(&id);
                Finished::Done
            }
            _ => Finished::NotOwner,
        };
        Box::pin(std::future::ready(Ok(finished)))
    }

    fn advance(
        &self,
        id: String,
        newest: Newest,
        now_ms: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match objects.get(&id) {
            Some(existing)
                if existing.expiration >= now_ms / 1000
                    && existing.created_at > newest.created_at =>
            {
                Some(existing.clone())
            }
            _ => {
                objects.insert(id, newest);
                None
            }
        };
        Box::pin(std::future::ready(Ok(newer)))
    }

    fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let found = steps
            .get(&id)
            .filter(|(_, expiration)| *expiration >= now_s)
            .map(|(state, _)| state.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.steps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (state, expiration));
        Box::pin(std::future::ready(Ok(())))
    }
}
