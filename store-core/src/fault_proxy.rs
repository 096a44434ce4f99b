//! [`FaultProxy`]: a TCP proxy for fault tests of network backends (feature `testkit`).
//!
//! A test points a backend at the proxy instead of the server; the proxy forwards bytes both
//! ways until the test cuts every connection ([`FaultProxy::cut`]) or refuses new ones
//! ([`FaultProxy::refuse`]), which is how a dropped connection or an unreachable server
//! looks to the backend. Real server restarts are tested with a private server; the proxy
//! covers what a restart cannot: cutting connections mid-call, at an exact moment.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
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
        let task = tokio::spawn({
            let refusing = refusing.clone();
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
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let mut client = client;
                        tokio::select! {
                            _ = copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                        // Dropping both streams closes them: the backend sees the cut.
                    });
                }
            }
        });
        Ok(Self {
            addr,
            cuts,
            refusing,
            task,
        })
    }

    /// The address to give the backend instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection open now (new ones are accepted unless refusing).
    pub fn cut(&self) {
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
