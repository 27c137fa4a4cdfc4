//! NATS JetStream: every event on `<prefix>.events.<stream>.<EventType>`,
//! every checkpoint on `<prefix>.checkpoints`, each with `Nats-Msg-Id` set
//! to its ID, so that JetStream drops a message published again after a
//! crash (within the stream's duplicate window).

use async_nats::jetstream::{self, message::PublishMessage, stream::StorageType};
use bytes::Bytes;

/// One message to publish.
pub struct Message {
    pub subject: String,
    /// `Nats-Msg-Id`.
    pub id: String,
    pub payload: Bytes,
}

/// A connection to JetStream, with the stream made sure of.
pub struct Publisher {
    jetstream: jetstream::Context,
}

/// The subject of an event.
pub fn event_subject(prefix: &str, stream: &str, event_type: &str) -> String {
    format!("{prefix}.events.{stream}.{event_type}")
}

/// The subject of checkpoints.
pub fn checkpoint_subject(prefix: &str) -> String {
    format!("{prefix}.checkpoints")
}

impl Publisher {
    /// Connects and creates the stream (file storage, the prefix's subjects)
    /// when it is missing.
    pub async fn connect(url: &str, stream: &str, prefix: &str) -> Result<Publisher, String> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to NATS: {e}"))?;
        let jetstream = jetstream::new(client);
        jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: stream.to_string(),
                subjects: vec![format!("{prefix}.>")],
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot find or create the JetStream stream {stream}: {e}"))?;
        Ok(Publisher { jetstream })
    }

    /// Publishes the messages in order and waits until JetStream stored
    /// every one (a duplicate counts as stored).
    pub async fn publish(&self, messages: Vec<Message>) -> Result<(), String> {
        let mut acks = Vec::with_capacity(messages.len());
        for m in messages {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", "application/cloudevents+json");
            let publish = PublishMessage::build().payload(m.payload).headers(headers).message_id(m.id.as_str());
            let ack = self.jetstream.send_publish(m.subject, publish).await.map_err(|e| format!("NATS publish: {e}"))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| format!("NATS did not store a message: {e}"))?;
        }
        Ok(())
    }
}
