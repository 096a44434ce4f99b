//! [`Link`]: a Redis connection that is replaced when it stops answering.
//!
//! The `redis` crate's connection manager reconnects when its connection fails, but not
//! when it merely stops answering; `store_core::net::Link` (shared by the network backends)
//! replaces such a connection after a request timed out with nothing received on it. Here
//! it holds a connection manager, and a replacement is a new manager that connects on first
//! use, so replacing never blocks the caller that noticed the stall.

use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use store_core::net;
use store_core::Result;

use crate::server::Server;
use crate::stats::Counters;

/// One use of a [`Link`]: the connection manager, and what the link had received then.
pub(crate) type Lease = net::Lease<ConnectionManager>;

/// A replaceable connection to the store's server.
pub(crate) struct Link {
    shared: net::Link<ConnectionManager>,
    server: Arc<Server>,
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
        let connect = {
            let server = server.clone();
            move || {
                let manager =
                    ConnectionManager::new_lazy_with_config(server.commands(), config.clone())
                        .map_err(|error| error.to_string())?;
                Counters::add(&counters.replaced_connections, 1);
                Ok(manager)
            }
        };
        Self {
            shared: net::Link::new(server.address.clone(), role, manager, connect),
            server,
        }
    }

    /// The server the link connects to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The connection to use now; `Closed` once the link is closed.
    pub fn lease(&self) -> Result<Lease> {
        self.shared.lease()
    }

    /// A request on `lease` got no answer in time; the connection is replaced if nothing
    /// at all arrived on it since the request went out.
    pub fn timed_out(&self, lease: &Lease) {
        self.shared.timed_out(lease);
    }

    /// Drops the connection; later leases are `Closed`.
    pub fn close(&self) {
        self.shared.close();
    }
}
