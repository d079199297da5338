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

impl EventSource {
    /// One round: every processor gets a batch, if there is one, and all are
    /// invoked at once. Returns how many were invoked.
    pub async fn round(&self, processors: &[Function]) -> usize {
        let mut invocations = Vec::new();
        for processor in processors {
            let batch = self
                .sqs
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
                .unwrap_or_default();
            if batch.is_empty() {
                continue;
            }
            invocations.push(async move {
                let response = processor.invoke(&sqs_event(&batch, &self.queue_arn)).await;
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
            });
        }
        let invoked = invocations.len();
        futures_util::future::join_all(invocations).await;
        invoked
    }
}
