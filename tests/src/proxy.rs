//! A TCP proxy on loopback that a test can cut and restore: the network path to the queue server going away and coming back.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Forwards a loopback port to `upstream`; [`Proxy::cut`] resets every open
/// connection and refuses new ones until [`Proxy::restore`].
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    upstream: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Proxy {
    /// Starts forwarding a free port to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let proxy = Self {
            port,
            upstream,
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        proxy.serve(listener);
        proxy
    }

    /// The endpoint URL through the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops listening and drops every open connection.
    pub fn cut(&self) {
        self.tasks.lock().expect("lock").abort_all();
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let connections = Arc::clone(&self.tasks);
        self.tasks.lock().expect("lock").spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.lock().expect("lock").spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
}
