//! [`FaultProxy`]: a TCP proxy for fault tests of network backends (feature `testkit`).
//!
//! A test points a backend at the proxy instead of the server; the proxy forwards bytes both
//! ways until the test cuts every connection ([`FaultProxy::cut`]) or refuses new ones
//! ([`FaultProxy::refuse`]), which is how a dropped connection or an unreachable server
//! looks to the backend. Real server restarts are tested with a private server; the proxy
//! covers what a restart cannot: cutting connections mid-call, at an exact moment.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops it and cuts every connection.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::fault_proxy::FaultProxy;
/// let proxy = FaultProxy::start("127.0.0.1:6379".parse().unwrap()).await.unwrap();
/// let url = format!("redis://{}/0", proxy.addr());
/// // ... connect a backend to `url`, start calls ...
/// proxy.cut();          // every open connection is closed now
/// proxy.refuse(true);   // new connections are closed at once: the server looks down
/// proxy.refuse(false);  // and back
/// # let _ = url;
/// # });
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    /// Bumped by every cut; a connection forwards only while it still has the number it
    /// started with, so nothing crosses a connection once `cut` has returned.
    generation: Arc<AtomicU64>,
    cuts: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cuts, cut_rx) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let refusing = refusing.clone();
            let generation = generation.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    if refusing.load(Ordering::Acquire) {
                        drop(client);
                        continue;
                    }
                    let mut cut = cut_rx.clone();
                    cut.mark_unchanged();
                    let generation = generation.clone();
                    let born = generation.load(Ordering::Acquire);
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::select! {
                            () = forward(client_read, server_write, &generation, born) => {}
                            () = forward(server_read, client_write, &generation, born) => {}
                            _ = cut.changed() => {}
                        }
                        // Dropping every half closes both sockets: the backend sees the cut.
                    });
                }
            }
        });
        Ok(Self {
            addr,
            generation,
            cuts,
            refusing,
            task,
        })
    }

    /// The address to give the backend instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection open now: from the moment this returns, no byte crosses any
    /// of them, and each is closed as soon as its task runs (new connections are accepted
    /// unless refusing).
    pub fn cut(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// While `true`, new connections are closed as soon as they are accepted.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// Copies bytes from `from` to `to` until either side closes or the proxy is cut.
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    generation: &AtomicU64,
    born: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if generation.load(Ordering::Acquire) != born || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
