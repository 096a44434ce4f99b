//! [`Link`]: a connection to the server that is replaced when it stops answering.
//!
//! The `redis` crate's connection manager reconnects when its connection fails (an I/O
//! error, a closed socket), but a connection that simply stops answering (a server that no
//! longer reads that socket, a network path that blackholes, a proxy that holds the bytes)
//! fails nothing: every request on it times out, for as long as the stall lasts, although a
//! new connection would work at once. So each use of a link is a [`Lease`] that notes how
//! many answers the link had received when the request went out; a request that times out
//! on a link that has received nothing since then reports it ([`Link::timed_out`]), and the
//! link is replaced by a new manager that connects on first use. One stuck socket then
//! costs at most one request timeout. Requests still in flight on the old connection fail
//! by their own timeout; their writes carry a deadline the server enforces (see
//! `store_core::net::ServerClock`), so none of them can land later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use store_core::{Error, Result};

use crate::server::Server;
use crate::stats::Counters;

/// A replaceable connection (see the [module docs](self)).
pub(crate) struct Link {
    server: Arc<Server>,
    config: ConnectionManagerConfig,
    /// What the link is for, in messages ("commands", "reads").
    role: &'static str,
    current: RwLock<Option<Current>>,
    counters: Arc<Counters>,
}

#[derive(Clone)]
struct Current {
    /// Bumped by every replacement, so that a late report about an old connection does not
    /// replace its successor.
    generation: u64,
    manager: ConnectionManager,
    /// Answers received on this connection.
    answered: Arc<AtomicU64>,
}

/// One use of a [`Link`]: the connection, and what the link had received when it began.
pub(crate) struct Lease {
    pub manager: ConnectionManager,
    generation: u64,
    answered: Arc<AtomicU64>,
    answered_before: u64,
}

impl Lease {
    /// An answer arrived on this connection (whatever it said): it is alive.
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }
}

impl Link {
    /// A link around `manager`, replaced by managers made from `config` when it stalls.
    pub fn new(
        server: Arc<Server>,
        manager: ConnectionManager,
        config: ConnectionManagerConfig,
        role: &'static str,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            server,
            config,
            role,
            current: RwLock::new(Some(Current {
                generation: 0,
                manager,
                answered: Arc::new(AtomicU64::new(0)),
            })),
            counters,
        }
    }

    /// The server the link connects to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The connection to use now; `Closed` once the link is closed.
    pub fn lease(&self) -> Result<Lease> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let current = current.as_ref().ok_or(Error::Closed)?;
        Ok(Lease {
            manager: current.manager.clone(),
            generation: current.generation,
            answered: current.answered.clone(),
            answered_before: current.answered.load(Ordering::Relaxed),
        })
    }

    /// A request on `lease` got no answer in time. If nothing at all arrived on that
    /// connection since the request went out, the connection has stopped answering: it is
    /// replaced (once, however many requests report it).
    pub fn timed_out(&self, lease: &Lease) {
        if lease.answered.load(Ordering::Relaxed) != lease.answered_before {
            // Something came back meanwhile: the connection is slow, not stuck.
            return;
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let Some(now) = current.as_mut() else {
            return;
        };
        if now.generation != lease.generation {
            return; // already replaced
        }
        match ConnectionManager::new_lazy_with_config(self.server.commands(), self.config.clone()) {
            Ok(manager) => {
                *now = Current {
                    generation: now.generation + 1,
                    manager,
                    answered: Arc::new(AtomicU64::new(0)),
                };
                Counters::add(&self.counters.replaced_connections, 1);
                tracing::warn!(
                    server = %self.server.address,
                    role = self.role,
                    "a connection stopped answering; replaced it with a new one"
                );
            }
            Err(error) => tracing::error!(
                server = %self.server.address,
                %error,
                "a connection stopped answering and could not be replaced"
            ),
        }
    }

    /// Drops the connection; later leases are `Closed`.
    pub fn close(&self) {
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(old);
    }
}
