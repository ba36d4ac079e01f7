//! Event fan-out. Every committed event is published on one in-process broadcast channel;
//! WebSocket connections and long polls subscribe. The broadcast may drop events for a slow
//! subscriber: subscribers notice the gap by `seq` and re-read the outbox, so nothing is lost.

pub mod sockets;
pub mod tickets;
pub mod ws;

use tokio::sync::broadcast;

use crate::domain::{Event, Publish};

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }

    pub fn publish(&self, event: Event) {
        metrics::counter!("kyso_events_published_total").increment(1);
        // No subscriber is not an error: the outbox keeps the event for later readers.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Publish for Hub {
    fn publish(&self, event: Event) {
        Hub::publish(self, event);
    }
}
