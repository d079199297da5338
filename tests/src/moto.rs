//! A real SQS- and Secrets Manager-compatible server: moto in server mode, on a free loopback port.
//!
//! Needs `pip install "moto[server]"`; the test command installs it. Each
//! [`Moto`] is its own server process, killed when dropped.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Credentials and region moto accepts; nothing here reaches AWS.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let mut moto = Self { child: None, port };
        moto.restart().await;
        moto
    }

    /// The endpoint URL for the SDKs (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server; its state is lost.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port (after [`Moto::stop`]).
    pub async fn restart(&mut self) {
        self.stop().await;
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 -m moto.server (pip install \"moto[server]\")");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SDK configuration pointing at this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "moto",
            ))
            .load()
            .await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// Creates a queue (FIFO when `name` ends in `.fifo`) and returns its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let mut request = self.sqs().await.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
        }
        request
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url")
    }

    /// Receives and deletes every message now in the queue (with all
    /// attributes). Deleting matters for FIFO queues, which hold back a
    /// group's later messages while earlier ones are in flight.
    pub async fn drain(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let sqs = self.sqs().await;
        let mut messages = Vec::new();
        loop {
            let batch = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if batch.is_empty() {
                return messages;
            }
            for message in &batch {
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
            messages.extend(batch);
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
