//! Processor binaries fed as Lambda's SQS event source mapping feeds them: receive a batch, invoke, delete what did not fail.
//!
//! Failed records stay in the queue and come back after their visibility
//! timeout; with a redrive policy, moto moves a message to the dead-letter
//! queue once it has been received the maximum number of times.

use std::collections::HashSet;

use crate::function::Function;
use crate::moto::{self, sqs_event};

/// A queue and how its records are handed out.
#[derive(Debug, Clone)]
pub struct EventSource {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    /// Records per invocation, at most 10.
    pub batch_size: i32,
    /// How long a received record stays hidden from the next receive.
    pub visibility_seconds: i32,
}

/// One invocation the mapping made: how long it took, and how many of its
/// records failed.
#[derive(Debug, Clone, Copy)]
pub struct Polled {
    pub duration: std::time::Duration,
    pub failed: usize,
}

impl EventSource {
    /// One receive of up to `batch_size` records.
    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .visibility_timeout(self.visibility_seconds)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    }

    /// Invokes `processor` with `batch` and deletes what did not fail.
    async fn invoke(&self, processor: &Function, batch: &[aws_sdk_sqs::types::Message]) -> Polled {
        let started = std::time::Instant::now();
        let response = processor.invoke(&sqs_event(batch, &self.queue_arn)).await;
        let duration = started.elapsed();
        let failed: HashSet<&str> = response["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures")
            .iter()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        let succeeded = batch
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()));
        moto::delete(&self.sqs, &self.queue_url, succeeded).await;
        Polled {
            duration,
            failed: failed.len(),
        }
    }

    /// One poll for `processor`: receive a batch, invoke, delete what did
    /// not fail. `None` when the queue had nothing to hand out.
    pub async fn poll(&self, processor: &Function) -> Option<Polled> {
        let batch = self.receive().await;
        if batch.is_empty() {
            return None;
        }
        Some(self.invoke(processor, &batch).await)
    }

    /// One round: every processor gets a batch, if there is one, and all are
    /// invoked at once. Returns how many were invoked.
    pub async fn round(&self, processors: &[Function]) -> usize {
        let mut invocations = Vec::new();
        for processor in processors {
            let batch = self.receive().await;
            if !batch.is_empty() {
                invocations.push(async move { self.invoke(processor, &batch).await });
            }
        }
        let invoked = invocations.len();
        futures_util::future::join_all(invocations).await;
        invoked
    }
}
