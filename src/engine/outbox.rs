//! Events leave the engine thread in one batch per step.
//!
//! Sending an event to a request's channel wakes the async task waiting on it, and waking a
//! parked runtime thread from the engine thread cost about 30-50 us per event in a batched step
//! on a 2-core machine (the woken thread often ran on the engine's own core first): 0.5-0.8 ms
//! of a 16-sequence step with 16 tokens to deliver, while the model's other thread waited. The
//! engine now queues a step's events in an [`Outbox`] and hands the batch to one dispatcher
//! thread, which does the sends: one wake-up per step on the engine thread.
//!
//! Order is kept: one queue, one dispatcher, batches in the order they were flushed, so each
//! sequence's events arrive in the order the engine produced them.
use std::sync::mpsc;

use tokio::sync::mpsc as tmpsc;

use super::events::Event;

type Batch = Vec<(tmpsc::UnboundedSender<Event>, Event)>;

pub(super) struct Outbox {
    pending: Batch,
    /// The dispatcher's queue; `None` when its thread could not start (events are then sent
    /// from the engine thread directly).
    dispatcher: Option<mpsc::Sender<Batch>>,
}

impl Outbox {
    /// Starts the dispatcher thread.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Batch>();
        let spawned = std::thread::Builder::new()
            .name("meit-events".into())
            .spawn(move || {
                // Ends when the outbox is dropped, after delivering every batch it flushed.
                for batch in rx {
                    deliver(batch);
                }
            });
        let dispatcher = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the event dispatcher thread ({e}); the engine thread sends events itself");
                None
            }
        };
        Outbox {
            pending: Vec::new(),
            dispatcher,
        }
    }

    /// Queues `event` for the receiver of `tx` (sent at the next [`Outbox::flush`]).
    pub fn push(&mut self, tx: &tmpsc::UnboundedSender<Event>, event: Event) {
        self.pending.push((tx.clone(), event));
    }

    /// Hands the queued events to the dispatcher.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        match &self.dispatcher {
            Some(d) => {
                if let Err(mpsc::SendError(batch)) = d.send(batch) {
                    // The dispatcher is gone (it cannot panic, but never lose events).
                    self.dispatcher = None;
                    deliver(batch);
                }
            }
            None => deliver(batch),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.flush();
    }
}

fn deliver(batch: Batch) {
    for (tx, event) in batch {
        // A receiver that is gone was cancelled; the engine reaps it before its next step.
        let _ = tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Finish, FinishReason, Timings, Usage};
    use std::time::Duration;

    fn finished() -> Event {
        Event::Finished(Finish {
            reason: FinishReason::Length,
            tail: String::new(),
            usage: Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
            },
            timings: Timings {
                queue: Duration::ZERO,
                ttft: None,
                total: Duration::ZERO,
            },
        })
    }

    #[test]
    fn events_arrive_in_order_only_after_a_flush_and_on_drop() {
        let (a_tx, mut a_rx) = tmpsc::unbounded_channel();
        let (b_tx, mut b_rx) = tmpsc::unbounded_channel();
        let mut out = Outbox::new();
        for i in 0..100u32 {
            out.push(
                &a_tx,
                Event::Token {
                    id: i,
                    text: i.to_string(),
                },
            );
            out.push(
                &b_tx,
                Event::Token {
                    id: 1000 + i,
                    text: String::new(),
                },
            );
            if i % 7 == 0 {
                out.flush();
            }
        }
        out.push(&a_tx, finished());
        std::thread::sleep(Duration::from_millis(20));
        // everything flushed so far is delivered, nothing after the last flush
        let mut got = Vec::new();
        while let Ok(Event::Token { id, .. }) = a_rx.try_recv() {
            got.push(id);
        }
        assert_eq!(got, (0..99).collect::<Vec<_>>());
        drop(out); // flushes the rest and lets the dispatcher drain and exit
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let next = tokio::time::timeout(Duration::from_secs(5), a_rx.recv()).await;
            assert!(matches!(next, Ok(Some(Event::Token { id: 99, .. }))));
            let last = tokio::time::timeout(Duration::from_secs(5), a_rx.recv()).await;
            assert!(matches!(last, Ok(Some(Event::Finished(_)))));
            for i in 0..100u32 {
                let ev = tokio::time::timeout(Duration::from_secs(5), b_rx.recv()).await;
                assert!(matches!(ev, Ok(Some(Event::Token { id, .. })) if id == 1000 + i));
            }
        });
    }

    #[test]
    fn a_closed_receiver_does_not_stop_the_others() {
        let (a_tx, a_rx) = tmpsc::unbounded_channel::<Event>();
        let (b_tx, mut b_rx) = tmpsc::unbounded_channel();
        drop(a_rx);
        let mut out = Outbox::new();
        out.push(&a_tx, finished());
        out.push(&b_tx, finished());
        drop(out);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let ev = tokio::time::timeout(Duration::from_secs(5), b_rx.recv()).await;
            assert!(matches!(ev, Ok(Some(Event::Finished(_)))));
        });
    }
}
