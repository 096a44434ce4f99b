//! The runtime every network backend is written on (Redis and PostgreSQL today; NATS and
//! MySQL next). A backend supplies its protocol; the rest is here, written once:
//!
//! | piece | what it does | a backend supplies |
//! |---|---|---|
//! | [`mailbox`] | bounded queue from handles to the actor; each call with a deadline counted from its caller's start; calls whose caller gave up never sent; stop reasons | its `Op` and `Reply` types |
//! | [`Inbox::next_batch`](mailbox::Inbox::next_batch) | every queued call at once, so a batch is one round trip (the network version of group commit) | how a batch becomes one request, how the answer is split back |
//! | [`Link`] | a connection replaced when it stops answering, so one stuck socket costs one timeout | how to connect |
//! | [`ServerClock`] | a caller's local deadline as a server time, so a write answered `Unavailable` never lands later | a way to read the server's clock, and a write that checks the deadline |
//! | [`Listener`] | the notification connection: pings, reconnects with the one [`Backoff`](crate::backoff::Backoff), re-checks every waiter after a reconnect | a [`Subscribe`]: how to subscribe, how to ping, what a message means |
//! | [`watch`](crate::watch) | `wait_for_version_change` that never loses a wake-up | a read of the key's version |
//! | [`ReaperSchedule`] | when expired records are reclaimed: soon after connecting, at the next expiry, at least every interval | one reaper run |
//! | the version-epoch check | the rule every backend keeps: before its first write on a server, a store compares the server's history with the one its versions were last handed out on, and on a difference moves its versions past every earlier one, so a restart from an older snapshot, a promoted replica or a restored backup never hands out a version twice | how it reads the server's history (Redis: the process's `run_id`, read inside the write script, since the client reconnects unseen; PostgreSQL: system identifier and timeline, once per connection, since a primary's history never changes under a connection) and how it moves its counter (a new epoch; a jump of the sequence) |
//!
//! # A backend in one page
//!
//! The "server" here is a map behind a mutex, and a change feed; a real backend sends each
//! batch over its connection instead. The store's handle forwards each `Storage` call to
//! the mailbox (only `get` and `put` are shown); the actor sends every batch it finds as
//! one request; waits go through the listener and `wait_for_version_change`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! use futures::{FutureExt, StreamExt};
//! use store_core::backoff::Backoff;
//! use store_core::net::mailbox::{self, Caller, Inbox};
//! use store_core::net::{Feed, Listener, ListenerTiming, Subscribe};
//! use store_core::watch::{self, Watchers};
//! use store_core::{BoxFuture, Error, Result};
//!
//! /// The pretend server: values with their versions, and subscribers to changes.
//! #[derive(Default)]
//! struct Server {
//!     data: Mutex<BTreeMap<String, (String, u64)>>,
//!     subscribers: Mutex<Vec<futures::channel::mpsc::UnboundedSender<Result<String>>>>,
//! }
//!
//! // 1. The protocol's operations, and how a batch becomes one request.
//! enum Op { Get(String), Put(String, String) }
//! enum Reply { Value(Option<(String, u64)>), Version(u64) }
//!
//! fn one_round_trip(server: &Server, batch: Vec<mailbox::Call<Op, Reply>>) {
//!     let mut data = server.data.lock().unwrap(); // the request: every call of the batch
//!     for call in batch {
//!         let reply = match &call.op {
//!             Op::Get(key) => Reply::Value(data.get(key).cloned()),
//!             Op::Put(key, value) => {
//!                 let version = data.get(key).map_or(1, |(_, v)| v + 1);
//!                 data.insert(key.clone(), (value.clone(), version));
//!                 for subscriber in server.subscribers.lock().unwrap().iter() {
//!                     let _ = subscriber.unbounded_send(Ok(key.clone()));
//!                 }
//!                 Reply::Version(version)
//!             }
//!         };
//!         call.answer(Ok(reply)); // split the answer back
//!     }
//! }
//!
//! // 2. How notifications arrive.
//! struct Changes(Arc<Server>);
//! impl Subscribe for Changes {
//!     type Message = String;
//!     fn subscribe(&self) -> BoxFuture<'static, Result<Feed<String>>> {
//!         let (tx, rx) = futures::channel::mpsc::unbounded();
//!         self.0.subscribers.lock().unwrap().push(tx);
//!         async move { Ok(Feed::new(rx.boxed(), || async { Ok(()) }.boxed())) }.boxed()
//!     }
//!     fn deliver(&self, key: String, watchers: &Watchers) { watchers.notify(&key) }
//!     fn address(&self) -> &str { "example:1" }
//! }
//!
//! // 3. The actor: batches from the mailbox, the listener beside them.
//! async fn actor(server: Arc<Server>, mut inbox: Inbox<Op, Reply>, mut listener: Listener<Changes>) {
//!     loop {
//!         tokio::select! {
//!             batch = inbox.next_batch(512) => match batch {
//!                 Some(batch) => one_round_trip(&server, batch),
//!                 None => return, // every handle is gone
//!             },
//!             () = listener.step() => {}
//!         }
//!     }
//! }
//!
//! // 4. The handle: each call goes through the mailbox.
//! struct Store { caller: Caller<Op, Reply>, watchers: Arc<Watchers> }
//! impl Store {
//!     async fn connect(server: Arc<Server>) -> Result<Store> {
//!         let timeout = Duration::from_secs(2);
//!         let watchers = Arc::new(Watchers::default());
//!         let timing = ListenerTiming {
//!             subscribe_timeout: timeout,
//!             ping_timeout: timeout,
//!             ping_every: Duration::from_secs(10),
//!             backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(5)),
//!         };
//!         let listener = Listener::open(Changes(server.clone()), watchers.clone(), timing).await?;
//!         let timed_out = Arc::new(|| Error::Unavailable("example:1: no answer within 2s".into()));
//!         let (caller, inbox) = mailbox::mailbox(1024, timeout, timed_out);
//!         tokio::spawn(actor(server, inbox, listener));
//!         Ok(Store { caller, watchers })
//!     }
//!     async fn put(&self, key: &str, value: &str) -> Result<u64> {
//!         match self.caller.call(Op::Put(key.into(), value.into())).await? {
//!             Reply::Version(version) => Ok(version),
//!             Reply::Value(_) => unreachable!("a put is answered with a version"),
//!         }
//!     }
//!     async fn get(&self, key: &str) -> Result<Option<(String, u64)>> {
//!         match self.caller.call(Op::Get(key.into())).await? {
//!             Reply::Value(value) => Ok(value),
//!             Reply::Version(_) => unreachable!("a get is answered with a value"),
//!         }
//!     }
//!     async fn wait_for_version_change(&self, key: &str, version: u64) -> Result<()> {
//!         let read = || async {
//!             Ok(self.get(key).await?.map(|(_, version)| (version.to_string(), None)))
//!         };
//!         watch::wait_for_version_change(&self.watchers, key, &version.to_string(), read).await
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = Arc::new(Server::default());
//! let (first, second) = (Store::connect(server.clone()).await?, Store::connect(server).await?);
//! let version = first.put("orders/1", "new").await?;
//! let waiting = second.wait_for_version_change("orders/1", version);
//! let (woken, _) = tokio::join!(waiting, first.put("orders/1", "paid"));
//! woken?; // the other handle's write woke the wait
//! assert_eq!(second.get("orders/1").await?, Some(("paid".to_owned(), 2)));
//! # Ok::<(), Error>(())
//! # });
//! ```

mod clock;
mod link;
mod listener;
pub mod mailbox;
mod reaper;

pub use clock::{ServerClock, MAX_DRIFT_PPM};
pub use link::{Lease, Link};
pub use listener::{Feed, Listener, ListenerFigures, ListenerTiming, Subscribe};
pub use reaper::{Reaped, ReaperSchedule};
