//! [`FaultProxy`]: a TCP proxy for fault tests of network backends.
//!
//! A test points a backend at the proxy instead of the server; the proxy forwards bytes both
//! ways until the test cuts every connection ([`FaultProxy::cut`]) or refuses new ones
//! ([`FaultProxy::refuse`]), which is how a dropped connection or an unreachable server
//! looks to the backend, or stalls the open ones ([`FaultProxy::stall`]): they hold every
//! byte, neither closed nor answering, until [`FaultProxy::resume`] delivers what they
//! held, late, while new connections work normally. That is a server that stopped reading
//! one socket, a network path that blackholes, or a statement stuck behind a lock. Real
//! server restarts are tested with a private server; the proxy covers what a restart
//! cannot: faults on open connections, at an exact moment.

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
/// use store_testkit::fault_proxy::FaultProxy;
/// let proxy = FaultProxy::start("127.0.0.1:6379".parse().unwrap()).await.unwrap();
/// let url = format!("redis://{}/0", proxy.addr());
/// // ... connect a backend to `url`, start calls ...
/// proxy.cut();          // every open connection is closed now
/// proxy.refuse(true);   // new connections are closed at once: the server looks down
/// proxy.refuse(false);  // and back
/// proxy.stall();        // open connections hold their bytes; new ones work
/// proxy.resume();       // and deliver them, late
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
    /// Connections accepted so far (they are numbered from 1 in that order).
    accepted: Arc<AtomicU64>,
    /// Connections numbered below this hold their bytes (see [`FaultProxy::stall`]); 0 when
    /// nothing is stalled. A watch, so that held connections learn of `resume` at once.
    stalled_below: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// // A client connects to the proxy, and the proxy to `server`:
    /// let client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (_at_server, _) = server.accept().await?;
    /// # drop(client);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// If no port of 127.0.0.1 can be bound.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cuts, cut_rx) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (stalled_below, stall_rx) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let refusing = refusing.clone();
            let generation = generation.clone();
            let accepted = accepted.clone();
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
                    let link = Link {
                        generation,
                        born,
                        number: accepted.fetch_add(1, Ordering::AcqRel) + 1,
                        stall: stall_rx.clone(),
                    };
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        // Each direction passes its end of stream on; a client that goes
                        // away still has what it sent delivered and answered (into the
                        // void), as a middlebox that keeps the server's session would. So
                        // bytes held in a stall reach the server even when the client has
                        // given up, which is what fault tests need to see.
                        let both = futures::future::join(
                            forward(client_read, server_write, link.clone(), false),
                            forward(server_read, client_write, link, true),
                        );
                        tokio::select! {
                            _ = both => {}
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
            accepted,
            stalled_below,
            task,
        })
    }

    /// The address to give the backend instead of the server's.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// assert!(proxy.addr().ip().is_loopback());
    /// let url = format!("redis://{}/0", proxy.addr());
    /// # let _ = url;
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection open now: from the moment this returns, no byte crosses any
    /// of them, and each is closed as soon as its task runs (new connections are accepted
    /// unless refusing).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// use tokio::io::AsyncReadExt;
    /// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (_at_server, _) = server.accept().await?;
    /// proxy.cut();
    /// // The client sees its connection closed.
    /// assert_eq!(client.read(&mut [0u8; 8]).await.unwrap_or(0), 0);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn cut(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// While `true`, new connections are closed as soon as they are accepted.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// proxy.refuse(true); // the server looks down
    /// proxy.refuse(false); // and back
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }

    /// Stalls every connection open now, in both directions: from the moment this returns
    /// no byte crosses them, and none is lost either: they wait in the proxy (and in the
    /// sockets' buffers behind it) until [`FaultProxy::resume`]. Connections made later
    /// forward as usual. A [`cut`](FaultProxy::cut) still closes stalled connections.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// let client = tokio::net::TcpStream::connect(proxy.addr()).await?;
    /// let (_at_server, _) = server.accept().await?;
    /// proxy.stall(); // `client` is neither answered nor closed
    /// proxy.resume(); // and now delivers what it held
    /// # drop(client);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn stall(&self) {
        let open = self.accepted.load(Ordering::Acquire);
        self.stalled_below.send_replace(open + 1);
    }

    /// Ends a [`stall`](FaultProxy::stall): stalled connections deliver what they held,
    /// in order, and forward as usual from then on.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use store_testkit::fault_proxy::FaultProxy;
    /// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let proxy = FaultProxy::start(server.local_addr()?).await?;
    /// proxy.stall();
    /// proxy.resume();
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn resume(&self) {
        self.stalled_below.send_replace(0);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// What a forwarding task knows of its connection.
#[derive(Clone)]
struct Link {
    generation: Arc<AtomicU64>,
    /// The cut generation the connection was accepted in.
    born: u64,
    /// Its number in accept order (from 1).
    number: u64,
    stall: watch::Receiver<u64>,
}

impl Link {
    fn cut(&self) -> bool {
        self.generation.load(Ordering::Acquire) != self.born
    }

    /// Waits while this connection is stalled: while the stall's bound is above its number.
    async fn held(&mut self) {
        while *self.stall.borrow_and_update() > self.number {
            if self.stall.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Copies bytes from `from` to `to` until `from` ends, then passes the end on; holds them
/// while the connection is stalled, and stops at once when the proxy is cut. If `to` stops
/// taking bytes, `drain` keeps reading `from` to its end (what the server answers a client
/// that left), otherwise the copy stops.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut link: Link, drain: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        link.held().await;
        if link.cut() {
            return;
        }
        if open && to.write_all(&buf[..n]).await.is_err() {
            if !drain {
                return;
            }
            open = false;
        }
    }
    let _ = to.shutdown().await;
}
