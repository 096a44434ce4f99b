//! Child server processes for tests: a free port, a process that is killed when its guard
//! is dropped, and waiting until it answers. Nothing here is Redis-specific; the PostgreSQL
//! backend's fault tests need the same.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that nothing listens on right now.
///
/// The port is only free when this returns; a server started on it a moment later almost
/// always gets it, and [`ChildServer::start`] reports the rare loser clearly.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("testing: no free TCP port on 127.0.0.1: {e}"))
}

/// A server process started by a test; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildServer {
    program: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts `program args...`, then calls `ready` until it returns `true` (at most
    /// `within`); panics with what to install if the program cannot be started.
    pub fn start(
        program: &str,
        args: &[String],
        within: Duration,
        ready: impl FnMut() -> bool,
    ) -> Self {
        let mut server = Self {
            program: program.to_owned(),
            args: args.to_vec(),
            child: None,
        };
        server.spawn(within, ready);
        server
    }

    fn spawn(&mut self, within: Duration, mut ready: impl FnMut() -> bool) {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "testing: cannot start `{}` ({e}); install it (for Redis: apt-get install \
                     redis-server) or put it on PATH",
                    self.program
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + within;
        while !ready() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "testing: `{} {}` exited at start ({status}); is its port taken?",
                    self.program,
                    self.args.join(" ")
                );
            }
            assert!(
                Instant::now() < deadline,
                "testing: `{} {}` did not become ready within {within:?}",
                self.program,
                self.args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL: no shutdown, nothing saved) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again (after [`kill`](ChildServer::kill)).
    pub fn restart(&mut self, within: Duration, ready: impl FnMut() -> bool) {
        self.kill();
        self.spawn(within, ready);
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}
