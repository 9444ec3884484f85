//! Admission control of the reward server: at most `capacity` batches are scored at once and at
//! most `max_queue` more wait for a slot; a request beyond that is refused at once
//! (RESOURCE_EXHAUSTED) instead of piling up in memory.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Scoring slots and the queue in front of them.
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Arc<Semaphore>,
    capacity: usize,
    max_queue: usize,
    /// Requests admitted and not yet done (waiting or scoring).
    admitted: Arc<AtomicUsize>,
}

/// A request's place: held from admission until its scoring ends (or it gives up waiting).
#[derive(Debug)]
pub(crate) struct Ticket {
    admitted: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// `capacity` slots (at least 1) and room for `max_queue` waiting requests.
    pub(crate) fn new(capacity: usize, max_queue: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_queue,
            admitted: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place in line, or RESOURCE_EXHAUSTED when every slot is busy and the queue is full.
    pub(crate) fn admit(&self) -> Result<Ticket, Status> {
        let limit = self.capacity + self.max_queue;
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let ticket = Ticket {
            admitted: self.admitted.clone(),
        };
        if before >= limit {
            drop(ticket);
            return Err(Status::resource_exhausted(format!(
                "the reward server is busy: {} batches scoring and {} waiting (its limits); \
                 retry after a backoff, or start it with a larger --max-concurrency/--max-queue",
                self.capacity, self.max_queue
            )));
        }
        Ok(ticket)
    }

    /// Waits for a scoring slot; the slot frees when the permit drops.
    pub(crate) async fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the reward server is shutting down"))
    }

    /// Batches being scored now.
    pub(crate) fn in_flight(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// Batches waiting for a slot.
    pub(crate) fn queued(&self) -> usize {
        self.admitted
            .load(Ordering::Acquire)
            .saturating_sub(self.in_flight())
    }

    /// Slots.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Room in the queue.
    pub(crate) fn max_queue(&self) -> usize {
        self.max_queue
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn admits_capacity_plus_queue_then_refuses() {
        let gate = Gate::new(1, 1);
        let a = gate.admit().unwrap();
        let _slot = gate.slot().await.unwrap();
        let b = gate.admit().unwrap();
        assert_eq!((gate.in_flight(), gate.queued()), (1, 1));
        let err = gate.admit().unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        drop(b);
        assert!(gate.admit().is_ok());
        drop(a);
    }
}
