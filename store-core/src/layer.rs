//! [`Layer`]: how a wrapper around a storage overrides only what it changes.
//!
//! A layer (namespace, cache, a backend's named handle around its actor) holds an
//! inner storage and changes some calls. `Layer` has one provided method per [`Storage`]
//! call, each forwarding to [`Layer::inner`], and every `Layer` is a `Storage` through the
//! blanket implementation below. So a layer writes only the calls it changes, and a call
//! added to `Storage` later reaches every layer's inner store without touching the layer.
//!
//! Why a trait with provided methods rather than tower's `Layer`/`Service` pair or
//! OpenDAL's `LayeredAccess`: a storage has ten calls with different signatures, not one
//! `call`, so tower's single-method shape does not fit; OpenDAL's shape is this one (an
//! `inner()` and forwarding defaults), which we follow without its associated-type
//! machinery, since every call here already returns a boxed future
//! ([`BoxFuture`](crate::BoxFuture)).
//!
//! A call a layer does not override costs no boxed future of its own: the provided method
//! hands back the inner store's future, and the blanket implementation hands back the
//! layer's.

use crate::Storage;

/// A storage that wraps another and forwards every call it does not override.
///
/// Implement [`inner`](Layer::inner) and the calls the layer changes; the rest forward,
/// `close` included, so closing the top of a stack closes all of it.
///
/// `Layer` and [`Storage`] have methods of the same names, and inside an `impl Layer` block
/// the `Layer` trait is in scope. So make a layer generic over its inner store (`S:
/// Storage`, as below) or hold an `Arc<dyn Storage>` (smart pointers are plain `Storage`s);
/// if the inner store is a concrete layer type such as `MemoryStorage`, call it as
/// `Storage::get(&self.inner, key)`. Where you only use layers, import only `Storage`.
///
/// ```
/// use async_trait::async_trait;
/// use store_core::{Record, Result, Storage};
///
/// /// Counts puts, forwards everything else.
/// struct CountPuts<S> {
///     inner: S,
///     puts: std::sync::atomic::AtomicU64,
/// }
///
/// #[async_trait]
/// impl<S: Storage> store_core::Layer for CountPuts<S> {
///     type Inner = S;
///     fn inner(&self) -> &S {
///         &self.inner
///     }
///     async fn put(&self, record: Record) -> Result<Record> {
///         self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.put(record).await
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let memory = store_core::__private::doc_store();
/// let store = CountPuts { inner: memory, puts: Default::default() };
/// store.put(Record::new("k", "v")).await.unwrap();
/// assert_eq!(&store.get("k").await.unwrap().value[..], b"v"); // forwarded
/// # });
/// ```
// The provided methods have the signatures of `Storage`'s calls, which are those
// `async_trait` gives an implementer's `async fn`, so that a layer overrides them with
// plain `async fn`s in an `#[async_trait]` impl, while a method it does not override
// hands back the inner store's future as it is: forwarding costs no boxed future of its own.
pub trait Layer: Send + Sync + 'static {
    /// The storage this layer wraps.
    type Inner: Storage + ?Sized;

    /// The wrapped storage, which receives every call the layer does not override.
    fn inner(&self) -> &Self::Inner;

    // One provided method per `Storage` call, forwarding to the inner store; a layer
    // overrides the calls it changes. `describe` and `stats` are overridden by layers that
    // add something worth naming or figures of their own (put first).
    crate::storage::forward_storage!(self, Storage, self.inner());
}

// Written out rather than with `#[async_trait]`, which would box the layer's (already
// boxed) future a second time.
impl<L: Layer> Storage for L {
    crate::storage::forward_storage!(self, Layer, self);
}
