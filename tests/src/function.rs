//! Running a function binary as Lambda runs it: its own process, Lambda's environment, the Runtime API.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::moto;
use crate::runtime_api::RuntimeApi;

/// The functions Lambda runs, tested as they ship: release builds.
const FUNCTIONS: [&str; 2] = ["webhook-receiver", "topic-processor"];

/// The binary `name`; `<NAME>_BIN` overrides the path.
///
/// The two functions are always the release builds in `target/release`
/// (`cargo build --release -p webhook-receiver -p topic-processor`), as
/// Lambda runs them. Every other binary (the `intercom-dev` CLI, the
/// `faulty-processor` test double, the `measure` tools) is a tool, taken
/// from the profile of the program asking for it: the tests' own debug build
/// (`cargo build --bins`), or `target/release` when a release `measure` runs
/// it. Linking each tool with fat LTO would cost CI several minutes and
/// change nothing a test checks; the release profile's one property the
/// `faulty-processor` tests rely on, unwinding, is checked on the manifest
/// itself (`processor_failures.rs`).
pub fn binary(name: &str) -> PathBuf {
    let variable = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(&variable) {
        return PathBuf::from(path);
    }
    let directory = if FUNCTIONS.contains(&name) {
        std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("target")
            })
            .join("release")
    } else {
        let me = std::env::current_exe().expect("this program's path");
        let mut directory = me.parent().expect("its directory").to_path_buf();
        // Test binaries live in `target/<profile>/deps`.
        if directory.ends_with("deps") {
            directory.pop();
        }
        directory
    };
    let path = directory.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release -p webhook-receiver -p topic-processor` \
         and `cargo build --bins` first (./tests/run.sh does), or set {variable}",
        path.display()
    );
    path
}

/// A function process under a [`RuntimeApi`], with its stdout kept as lines.
#[derive(Debug)]
pub struct Function {
    child: Child,
    pub api: RuntimeApi,
    lines: Arc<Mutex<Vec<String>>>,
    pub started: std::time::Instant,
}

impl Function {
    /// Starts `binary` with Lambda's environment, moto's endpoint and `env`.
    /// `webhook-receiver` queueing to `queue_url` on `moto`, with the test
    /// secret inline and `env` besides.
    pub async fn receiver(moto: &moto::Moto, queue_url: &str, env: &[(&str, String)]) -> Self {
        let mut all = vec![
            ("QUEUE_URL", queue_url.to_owned()),
            (
                "INTERCOM_CLIENT_SECRET",
                crate::fixtures::TEST_SECRET.to_owned(),
            ),
        ];
        all.extend_from_slice(env);
        Self::start("webhook-receiver", Some(moto), &all).await
    }

    pub async fn start(name: &str, moto: Option<&moto::Moto>, env: &[(&str, String)]) -> Self {
        let api = RuntimeApi::start().await;
        let mut command = Command::new(binary(name));
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(moto) = moto {
            command.env("AWS_ENDPOINT_URL", moto.endpoint());
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let started = std::time::Instant::now();
        let mut child = command.spawn().expect("spawn the function binary");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = Arc::clone(&lines);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().expect("lock").push(line);
                }
            });
        }
        Self {
            child,
            api,
            lines,
            started,
        }
    }

    /// Invokes the function with `event` and returns its response, panicking on
    /// an invocation error or no answer within 10 s.
    pub async fn invoke(&self, event: &Value) -> Value {
        match self.api.invoke(event, Duration::from_secs(10)).await {
            Some(crate::runtime_api::Outcome::Response(value)) => value,
            other => panic!(
                "invocation failed: {other:?}\nlogs:\n{}",
                self.logs().join("\n")
            ),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything the function wrote so far, a line each.
    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// The lines that parse as JSON objects.
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The JSON lines that satisfy `matches`, once at least `count` of them
    /// have been read (or after 5 s, so a missing line fails the caller's
    /// assertion rather than hanging). The function writes a line before it
    /// answers, but this process reads its pipe concurrently, so a line can
    /// still be in flight when the answer arrives.
    pub async fn json_logs_when(
        &self,
        count: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<Value> = self
                .json_logs()
                .into_iter()
                .filter(|l| matches(l))
                .collect();
            if found.len() >= count || std::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asserts the start failed as the contract says: an init error naming
    /// `variable` reported to the Runtime API, the process exited unsuccessfully
    /// without ever asking for work, and nothing panicked. Returns the report.
    pub async fn expect_init_error(&mut self, variable: &str) -> Value {
        let error = self
            .api
            .init_error(Duration::from_secs(10))
            .await
            .expect("an init error report");
        assert_eq!(error["errorType"], "Runtime.InitError", "{error}");
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains(variable)),
            "{error}"
        );
        let status = self
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("exits");
        assert!(!status.success());
        assert!(self.api.first_poll().is_none(), "never asked for work");
        assert!(!self.logs().iter().any(|l| l.contains("panicked")));
        error
    }

    /// Kills the process at once (SIGKILL), as a crash or Lambda's timeout would.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits up to `timeout` for the process to exit, returning its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}
