//! Draining an actor's mailbox in batches.
//!
//! An actor that talks to a server keeps calls waiting while a batch is in flight, so the
//! next batch carries everything that arrived meanwhile (the batching that makes one round
//! trip serve many callers). It must not take calls out of the bounded mailbox faster than
//! it sends them, or the bound stops protecting memory: [`Mailbox::recv_batch`] takes at
//! most what fits under the cap on waiting calls, and nothing while the cap is reached, so
//! callers wait in `send` (back-pressure) instead.

use tokio::sync::mpsc;

/// The receiving side of an actor's mailbox.
pub(crate) struct Mailbox<C> {
    receiver: mpsc::Receiver<C>,
    /// Calls taken out of the mailbox but not dispatched yet, at most.
    max_waiting: usize,
}

impl<C> Mailbox<C> {
    pub fn new(receiver: mpsc::Receiver<C>, max_waiting: usize) -> Self {
        Self {
            receiver,
            max_waiting: max_waiting.max(1),
        }
    }

    /// Whether the actor may take more calls while `waiting` are not dispatched yet.
    pub fn has_room(&self, waiting: usize) -> bool {
        waiting < self.max_waiting
    }

    /// Waits for at least one command and appends every queued one to `into`, up to the
    /// room left under the cap. Returns `false` when every sender is gone.
    pub async fn recv_batch(&mut self, into: &mut Vec<C>, waiting: usize) -> bool {
        let room = self.max_waiting.saturating_sub(waiting).max(1);
        self.receiver.recv_many(into, room).await > 0
    }

    /// Refuses new commands and hands back those still queued (to be answered `Closed`).
    pub fn close(&mut self) -> Vec<C> {
        self.receiver.close();
        let mut left = Vec::new();
        while let Ok(command) = self.receiver.try_recv() {
            left.push(command);
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_stop_at_the_cap_and_close_hands_back_the_rest() {
        let (sender, receiver) = mpsc::channel(100);
        let mut mailbox = Mailbox::new(receiver, 10);
        for i in 0..25 {
            sender.send(i).await.unwrap();
        }
        let mut batch = Vec::new();
        assert!(mailbox.recv_batch(&mut batch, 4).await);
        assert_eq!(batch, (0..6).collect::<Vec<_>>());
        assert!(!mailbox.has_room(10));
        assert_eq!(mailbox.close(), (6..25).collect::<Vec<_>>());
        drop(sender);
        assert!(!mailbox.recv_batch(&mut batch, 0).await);
    }
}
