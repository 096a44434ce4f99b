//! The fault proxy forwards, cuts and refuses as the network backends' fault tests need.

use std::time::Duration;

use store_testkit::fault_proxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free port.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream) -> std::io::Result<usize> {
    stream.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the proxy hangs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_then_cuts_then_refuses() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut stream).await.unwrap(), 4);

    proxy.cut();
    // The cut connection reads end-of-stream (or an error), never hangs.
    let after_cut = round_trip(&mut stream).await;
    assert!(matches!(after_cut, Ok(0) | Err(_)), "{after_cut:?}");

    proxy.refuse(true);
    let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(matches!(round_trip(&mut refused).await, Ok(0) | Err(_)));

    proxy.refuse(false);
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut again).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_holds_open_connections_and_resume_delivers_late() {
    let proxy = FaultProxy::start(echo().await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut old).await.unwrap(), 4);

    proxy.stall();
    old.write_all(b"late").await.unwrap();
    let mut buf = [0u8; 4];
    // Held: nothing comes back while the stall lasts (the read is given time to fail).
    let held = tokio::time::timeout(Duration::from_millis(200), old.read(&mut buf)).await;
    assert!(held.is_err(), "a stalled connection answered: {held:?}");

    // A connection made during the stall works.
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut fresh).await.unwrap(), 4);

    proxy.resume();
    let n = tokio::time::timeout(Duration::from_secs(5), old.read_exact(&mut buf))
        .await
        .expect("the resumed connection did not deliver what it held")
        .unwrap();
    assert_eq!((n, &buf), (4, b"late"));
}
