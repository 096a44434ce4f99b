//! Coordination primitives on any `store-core` [`Storage`](store_core::Storage): a
//! [`Lock`] with a lease and a fencing token, and an [`Election`] of one leader.
//!
//! They are built only on the versioned contract (`create`, `cas_by_version`,
//! `wait_for_version_change`, expiry), so they work on every backend: within one process
//! on the memory and file stores, across processes and machines on Redis and PostgreSQL.
//! Nobody polls: a waiting claimant is woken by the store when the holder releases or its
//! lease expires.
//!
//! # Layout
//!
//! - `lease.rs`: the one mechanism both use: claim a record with a TTL, queue behind its
//!   holder, renew it in the background, notice its loss, release only what we hold.
//! - `lock.rs`: [`Lock`], [`LockOptions`], [`LockGuard`].
//! - `election.rs`: [`Election`], [`ElectionOptions`], [`Leadership`], [`Leader`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use store_sync::{Lock, LockOptions};
//!
//! let storage: Arc<dyn store_core::Storage> = Arc::new(store_memory::MemoryStorage::new());
//! let lock = Lock::new(storage, "invoices", LockOptions { lease: Duration::from_secs(5), ..Default::default() });
//! let guard = lock.acquire().await?;
//! tokio::select! {
//!     () = guard.lost() => eprintln!("lost the lock; do not commit"),
//!     () = async { /* work that must not run twice at once */ } => {}
//! }
//! guard.release().await?;
//! # Ok::<(), store_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # What is guaranteed, and what is assumed
//!
//! **Mutual exclusion, as far as the store can see.** At any moment at most one live lock
//! record exists per name (`create` succeeds for one claimant only, and the store is
//! linearizable), so at most one guard is *valid*. A guard is valid from its claim until its
//! lease ends without renewal, it is released, or a renewal is refused.
//!
//! **Leases and clocks.** A lease's end is an absolute time written by the holder (its
//! clock plus the lease) and judged by the store: by the process's own clock on the memory
//! and file stores, by the server's clock on Redis and PostgreSQL. So holders and the store
//! are assumed to keep clocks within a small skew of each other (NTP). The holder considers
//! the lock lost earlier than the store would drop it: at the start of its last successful
//! claim or renewal, plus the lease, minus [`LockOptions::clock_margin`] (a tenth of the
//! lease by default), measured on a monotonic clock. With a skew smaller than the margin,
//! [`LockGuard::lost`] fires before anyone else can take the lock.
//!
//! **What a paused or partitioned holder can and cannot do.** A holder that is paused (a
//! long GC pause, a stopped VM, a process descheduled for seconds) or cut off from the
//! store stops renewing; its lease runs out and another claimant takes the lock. When the
//! paused holder resumes, [`LockGuard::is_lost`] is true at once and `lost()` resolves as
//! soon as its task runs again: both are judged by the time, not only by what the renewal
//! task (which has not run yet either) reported. But code that was already past its check
//! may still act believing it holds the lock. No
//! lease-based lock can prevent that on its own; this is why fencing exists. What the
//! paused holder *cannot* do: renew (its CAS names a version that is gone), release the
//! next holder's lock (release is a CAS on the version it wrote last), or, with fencing,
//! write the protected resource.
//!
//! **Fencing.** [`LockGuard::token`] is the version of the lock record the acquisition
//! created: never reused, different for every acquisition. To protect a resource stored in
//! the same store, write it only with `cas_by_version`, and have each new holder first
//! *claim* the resource (a CAS that stores its token) before reading it for its work. A
//! stale holder's later CAS then names a resource version that the new holder's claim has
//! replaced, and fails with `Conflict`: the late write is refused instead of overwriting the
//! new holder's work. The `fenced_counter` example shows this refusing a paused holder.
//! Tokens are unique, not ordered: compare them for equality, never as numbers.
//!
//! **No polling, no hot spin.** A claimant that finds the lock held waits on the holder's
//! version; a renewal wakes it once per renewal interval (it then waits on the new
//! version), a release or lapse wakes it to claim. golibs' `distlock` hot-spins here on
//! Redis, because its `Create` returns an empty version on conflict; ours returns the live
//! record.
//!
//! **Cancellation.** `acquire`, `try_acquire` and `campaign` can be cancelled by dropping
//! the future, leaving nothing behind: a claim that wins at the moment of cancellation is
//! released at once. A guard dropped without `release` stops renewing and releases in the
//! background.

#![forbid(unsafe_code)]

mod election;
mod lease;
mod lock;

pub use election::{Election, ElectionOptions, Leader, Leadership};
pub use lock::{Lock, LockGuard, LockOptions};
