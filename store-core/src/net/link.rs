//! [`Link`]: a connection to a server that is replaced when it stops answering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::{Error, Result};

/// Makes a new connection for a [`Link`]; a connection that connects lazily (on first use)
/// keeps the replacement itself from blocking.
type Connect<C> = Box<dyn Fn() -> std::result::Result<C, String> + Send + Sync>;

/// A connection to a server that is replaced when it stops answering.
///
/// A client library reconnects when its connection fails (an I/O error, a closed socket),
/// but a connection that simply stops answering (a server that no longer reads that
/// socket, a network path that blackholes, a proxy that holds the bytes) fails nothing:
/// every request on it times out, for as long as the stall lasts, although a new
/// connection would work at once. So each use of a link is a [`Lease`] that notes how many
/// answers the link had received when the request went out; a request that times out on a
/// link that has received nothing since then reports it ([`Link::timed_out`]), and the
/// link is replaced by a new connection. One stuck socket then costs at most one request
/// timeout. Requests still in flight on the old connection fail by their own timeout;
/// their writes must carry a deadline the server enforces (see [`ServerClock`](super::ServerClock)), so that
/// none of them can land later.
///
/// `C` is a cheap handle on one connection (a multiplexed client that clones, for
/// example); every [`lease`](Link::lease) clones it.
///
/// ```
/// use store_core::net::Link;
///
/// // A "connection" numbered by how many were made before it.
/// let made = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1));
/// let link = Link::new("example:1", "commands", 0u32, {
///     let made = made.clone();
///     move || Ok(made.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
/// });
/// let lease = link.lease()?;
/// // The request on it timed out with nothing received since: the link is replaced.
/// link.timed_out(&lease);
/// assert_eq!(link.lease()?.connection, 1);
/// assert_eq!(link.replacements(), 1);
/// # Ok::<(), store_core::Error>(())
/// ```
pub struct Link<C> {
    /// The server's address, in messages.
    address: String,
    /// What the link is for, in messages ("commands", "reads").
    role: &'static str,
    connect: Connect<C>,
    current: RwLock<Option<Current<C>>>,
    replacements: AtomicU64,
}

impl<C> std::fmt::Debug for Link<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("address", &self.address)
            .field("role", &self.role)
            .field("replacements", &self.replacements.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Current<C> {
    /// Bumped by every replacement, so that a late report about an old connection does not
    /// replace its successor.
    generation: u64,
    connection: C,
    /// Answers received on this connection.
    answered: Arc<AtomicU64>,
}

/// One use of a [`Link`]: the connection, and what the link had received when it began.
///
/// ```
/// let link = store_core::net::Link::new("example:1", "reads", 7u8, || Ok(8));
/// let lease = link.lease()?;
/// assert_eq!(lease.connection, 7);
/// lease.answered(); // an answer came back on it
/// # Ok::<(), store_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Lease<C> {
    /// The connection to send the request on.
    pub connection: C,
    generation: u64,
    answered: Arc<AtomicU64>,
    answered_before: u64,
}

impl<C> Lease<C> {
    /// An answer arrived on this connection (whatever it said): it is alive.
    ///
    /// ```
    /// let link = store_core::net::Link::new("example:1", "reads", 7u8, || Ok(8));
    /// let lease = link.lease()?;
    /// lease.answered();
    /// link.timed_out(&lease); // slow, not stuck: kept
    /// assert_eq!(link.lease()?.connection, 7);
    /// # Ok::<(), store_core::Error>(())
    /// ```
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }
}

impl<C: Clone> Link<C> {
    /// A link to `address` around `connection`, replaced by what `connect` makes when it
    /// stalls; `role` says what the link is for in log messages.
    ///
    /// ```
    /// let link = store_core::net::Link::new("example:1", "commands", "first", || Ok("next"));
    /// assert_eq!(link.address(), "example:1");
    /// ```
    pub fn new(
        address: impl Into<String>,
        role: &'static str,
        connection: C,
        connect: impl Fn() -> std::result::Result<C, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            address: address.into(),
            role,
            connect: Box::new(connect),
            current: RwLock::new(Some(Current {
                generation: 0,
                connection,
                answered: Arc::new(AtomicU64::new(0)),
            })),
            replacements: AtomicU64::new(0),
        }
    }

    /// The server's address, as given.
    ///
    /// ```
    /// let link = store_core::net::Link::new("example:1", "commands", 0, || Ok(1));
    /// assert_eq!(link.address(), "example:1");
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The connection to use now; `Closed` once the link is closed.
    ///
    /// ```
    /// let link = store_core::net::Link::new("example:1", "commands", 0, || Ok(1));
    /// assert_eq!(link.lease()?.connection, 0);
    /// link.close();
    /// assert!(matches!(link.lease(), Err(store_core::Error::Closed)));
    /// # Ok::<(), store_core::Error>(())
    /// ```
    pub fn lease(&self) -> Result<Lease<C>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let current = current.as_ref().ok_or(Error::Closed)?;
        Ok(Lease {
            connection: current.connection.clone(),
            generation: current.generation,
            answered: current.answered.clone(),
            answered_before: current.answered.load(Ordering::Relaxed),
        })
    }

    /// A request on `lease` got no answer in time. If nothing at all arrived on that
    /// connection since the request went out, the connection has stopped answering: it is
    /// replaced (once, however many requests report it). See the [`Link`] example.
    pub fn timed_out(&self, lease: &Lease<C>) {
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
        match (self.connect)() {
            Ok(connection) => {
                *now = Current {
                    generation: now.generation + 1,
                    connection,
                    answered: Arc::new(AtomicU64::new(0)),
                };
                self.replacements.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    server = %self.address,
                    role = self.role,
                    "a connection stopped answering; replaced it with a new one"
                );
            }
            Err(error) => tracing::error!(
                server = %self.address,
                role = self.role,
                %error,
                "a connection stopped answering and could not be replaced"
            ),
        }
    }

    /// How many times the connection was replaced (for a backend's `stats()`). See the
    /// [`Link`] example.
    pub fn replacements(&self) -> u64 {
        self.replacements.load(Ordering::Relaxed)
    }

    /// Drops the connection; later leases are `Closed`. See [`lease`](Link::lease).
    pub fn close(&self) {
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered() -> Link<u32> {
        let made = AtomicU64::new(1);
        Link::new("test:1", "commands", 0, move || {
            Ok(made.fetch_add(1, Ordering::Relaxed) as u32)
        })
    }

    #[test]
    fn many_reports_of_one_stall_replace_the_connection_once() {
        let link = numbered();
        let leases: Vec<_> = (0..5).map(|_| link.lease().unwrap()).collect();
        for lease in &leases {
            link.timed_out(lease);
        }
        assert_eq!(link.lease().unwrap().connection, 1);
        assert_eq!(link.replacements(), 1);
    }

    #[test]
    fn a_connection_that_answered_meanwhile_is_kept() {
        let link = numbered();
        let slow = link.lease().unwrap();
        let other = link.lease().unwrap();
        other.answered();
        link.timed_out(&slow);
        assert_eq!(link.lease().unwrap().connection, 0);
        assert_eq!(link.replacements(), 0);
    }

    #[test]
    fn a_failed_replacement_keeps_the_old_connection() {
        let link = Link::new("test:1", "commands", 0u32, || Err("refused".to_owned()));
        let lease = link.lease().unwrap();
        link.timed_out(&lease);
        assert_eq!(link.lease().unwrap().connection, 0);
        assert_eq!(link.replacements(), 0);
    }
}
