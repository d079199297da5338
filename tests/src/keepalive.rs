//! A keep-alive HTTP proxy in front of moto: nginx, so that clients reuse their connections as real AWS lets them.
//!
//! moto closes every HTTP connection after one answer, so a client talking
//! to it directly pays a TCP connect (and its CPU) per call, which real SQS
//! never charges. Wherever a figure depends on connection reuse (CPU per
//! request, latency), clients go through this proxy: it keeps their
//! connections open and opens its own, one a request, to moto. Needs nginx
//! (Debian's `nginx-light`); the test command installs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::moto::free_port;

/// A running nginx that forwards a free loopback port to `upstream`.
#[derive(Debug)]
pub struct KeepAliveProxy {
    _child: Child,
    _dir: TempDir,
    pub port: u16,
}

impl KeepAliveProxy {
    /// Starts nginx in front of `127.0.0.1:upstream` and waits until it listens.
    pub async fn start(upstream: u16) -> Self {
        Self::start_logging(upstream, false).await
    }

    /// The same; with `log_calls`, each request's `X-Amz-Target` (the AWS
    /// API it calls, for JSON-protocol services) is logged, to be counted
    /// with [`Self::calls`].
    pub async fn start_logging(upstream: u16, log_calls: bool) -> Self {
        let port = free_port();
        let dir = TempDir::new("keepalive");
        let path = |name: &str| dir.0.join(name).display().to_string();
        let access_log = if log_calls {
            format!(
                "log_format calls '$http_x_amz_target';\n  access_log {} calls;",
                path("calls.log")
            )
        } else {
            "access_log off;".to_owned()
        };
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {error_log} error;
events {{ worker_connections 4096; }}
http {{
  {access_log}
  client_body_temp_path {body};
  proxy_temp_path {proxy};
  fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp};
  scgi_temp_path {tmp};
  client_max_body_size 0;
  client_body_buffer_size 2m;
  keepalive_timeout 600s;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_read_timeout 60s;
    }}
  }}
}}
"#,
            pid = path("nginx.pid"),
            error_log = path("error.log"),
            body = path("body"),
            proxy = path("proxy"),
            tmp = path("tmp"),
        );
        let config_path = dir.0.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let nginx = std::env::var("NGINX").unwrap_or_else(|_| "nginx".into());
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{nginx}: {e} (apt-get install nginx-light, or set NGINX)"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            _child: child,
            _dir: dir,
            port,
        }
    }

    /// How many requests so far called each `X-Amz-Target` (with
    /// [`Self::start_logging`]); nginx writes its log line as it answers.
    pub fn calls(&self) -> std::collections::BTreeMap<String, usize> {
        let log = std::fs::read_to_string(self._dir.0.join("calls.log")).unwrap_or_default();
        let mut calls = std::collections::BTreeMap::new();
        for target in log.lines() {
            *calls.entry(target.to_owned()).or_insert(0) += 1;
        }
        calls
    }

    /// The endpoint URL through the proxy (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "intercom-{label}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
