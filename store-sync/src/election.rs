//! [`Election`]: one leader at a time, replaced when it resigns or its lease lapses.
//!
//! Two records per election:
//! - `<prefix><name>/leader`: the leader's leased record (the same mechanism as a lock),
//!   holding the leader's id and value;
//! - `<prefix><name>/term`: a permanent record that every new leader rewrites *after* it
//!   has won, so that observers waiting while there is no leader are woken by the next
//!   one (there is no leader record to wait on then).
//!
//! An observer reads both in one `get_many` (one snapshot), reports a change of leader, and
//! waits on the leader record's version (a resignation, a lapse or a renewal wakes it) or,
//! when there is no leader, on the term record's version.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use store_core::{validate_key, Error, Record, Result, Storage};

use crate::lease::{self, Hold, Terms};

/// How an [`Election`] behaves. Start from `Default` and set what you need:
///
/// ```
/// use std::time::Duration;
/// let options = store_sync::ElectionOptions { lease: Duration::from_secs(3), ..Default::default() };
/// assert_eq!(options.key_prefix, "election/");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionOptions {
    /// How long a leader stays leader without renewing: a leader that crashes is replaced
    /// this long after its last renewal. Default 10 s.
    pub lease: Duration,
    /// How often the leader renews; `None` means a third of `lease`.
    pub renew_every: Option<Duration>,
    /// How much earlier than the lease's end a leader considers itself deposed (see the
    /// crate docs on clocks); `None` means a tenth of `lease`.
    pub clock_margin: Option<Duration>,
    /// Where the election's records live: `<key_prefix><name>/leader` and `.../term`.
    /// Default `"election/"`.
    pub key_prefix: String,
}

impl Default for ElectionOptions {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            renew_every: None,
            clock_margin: None,
            key_prefix: "election/".to_owned(),
        }
    }
}

/// The current leader as anyone can see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// Identifies this leadership (one campaign's win); changes whenever the leader does,
    /// even if the same process wins again.
    pub id: String,
    /// What the leader campaigned with (for example its address).
    pub value: Bytes,
}

/// A named election in a [`Storage`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use futures::StreamExt;
/// use store_sync::{Election, ElectionOptions};
///
/// let storage: Arc<dyn store_core::Storage> = Arc::new(store_memory::MemoryStorage::new());
/// let election = Election::new(storage, "shard-7", ElectionOptions::default());
/// let mut changes = election.observe();
/// assert_eq!(changes.next().await.unwrap()?, None); // nobody leads yet
///
/// let leadership = election.campaign("10.0.0.5:8080").await?; // returns once we lead
/// let leader = changes.next().await.unwrap()?.unwrap();
/// assert_eq!(&leader.value[..], b"10.0.0.5:8080");
///
/// leadership.resign().await?;
/// assert_eq!(changes.next().await.unwrap()?, None);
/// # Ok::<(), store_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Election {
    storage: Arc<dyn Storage>,
    leader_key: String,
    term_key: String,
    options: ElectionOptions,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("leader_key", &self.leader_key)
            .field("options", &self.options)
            .finish()
    }
}

impl Election {
    /// An election called `name` in `storage`. Nothing is written until someone campaigns
    /// or observes.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let election = store_sync::Election::new(storage, "scheduler", Default::default());
    /// # let _ = election;
    /// # });
    /// ```
    pub fn new(storage: Arc<dyn Storage>, name: &str, options: ElectionOptions) -> Self {
        Self {
            leader_key: format!("{}{name}/leader", options.key_prefix),
            term_key: format!("{}{name}/term", options.key_prefix),
            storage,
            options,
        }
    }

    fn terms(&self) -> Result<Terms> {
        validate_key(&self.leader_key)?;
        validate_key(&self.term_key)?;
        let terms = Terms {
            lease: self.options.lease,
            renew_every: self.options.renew_every.unwrap_or(self.options.lease / 3),
            margin: self.options.clock_margin.unwrap_or(self.options.lease / 10),
        };
        terms.check(&format!("election {:?}", self.leader_key))?;
        Ok(terms)
    }

    /// Waits until this candidate leads (woken by the store when the leader resigns or its
    /// lease lapses, never polling), then announces it. Cancel by dropping the future.
    ///
    /// # Errors
    ///
    /// The store's errors; if the announcement fails, the won leadership is resigned and
    /// the error returned, so a leader is never unknown to observers.
    pub async fn campaign(&self, value: impl Into<Bytes>) -> Result<Leadership> {
        let terms = self.terms()?;
        let id = lease::claim_id();
        let value = value.into();
        let record = encode(&id, &value);
        let hold = lease::claim_waiting(&self.storage, &self.leader_key, record, &terms).await?;
        if let Err(error) = self
            .storage
            .put(Record::new(self.term_key.clone(), id.clone()))
            .await
        {
            let _ = hold.release().await;
            return Err(error);
        }
        tracing::info!(key = self.leader_key, id, "won the election");
        Ok(Leadership { hold, id, value })
    }

    /// The leader now, if there is one.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let storage: std::sync::Arc<dyn store_core::Storage> = std::sync::Arc::new(store_memory::MemoryStorage::new());
    /// let election = store_sync::Election::new(storage, "e", Default::default());
    /// assert_eq!(election.leader().await.unwrap(), None);
    /// # });
    /// ```
    pub async fn leader(&self) -> Result<Option<Leader>> {
        match self.storage.get(&self.leader_key).await {
            Ok(record) => Ok(decode(&record.value)),
            Err(Error::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The leader now, then every change of leader (`None` while there is none), as the
    /// store reports them: push-based, no polling. Consecutive reports always differ. The
    /// stream ends after yielding an error.
    pub fn observe(&self) -> BoxStream<'static, Result<Option<Leader>>> {
        let election = self.clone();
        futures::stream::unfold(Some(None::<Option<Leader>>), move |last| {
            let election = election.clone();
            async move {
                // `last`: `None` once the stream has failed; `Some(None)` before the first report.
                let last = last?;
                match election.next_change(last.clone()).await {
                    Ok(leader) => Some((Ok(leader.clone()), Some(Some(leader)))),
                    Err(error) => Some((Err(error), None)),
                }
            }
        })
        .boxed()
    }

    /// Waits for the leader to differ from `last` (or reports the current one if `last` is
    /// `None`).
    async fn next_change(&self, last: Option<Option<Leader>>) -> Result<Option<Leader>> {
        loop {
            let answer = self
                .storage
                .get_many(&[&self.term_key, &self.leader_key])
                .await?;
            // The contract is one answer per key; a storage that breaks it gets an error
            // naming what it did, not a panic indexing past its answer.
            let [term, leader]: [Option<Record>; 2] =
                answer.try_into().map_err(|answer: Vec<Option<Record>>| {
                    Error::Backend(format!(
                        "get_many of the 2 keys {:?} and {:?} answered {} records; a storage \
                         answers one per key",
                        self.term_key,
                        self.leader_key,
                        answer.len()
                    ))
                })?;
            let current = leader.as_ref().and_then(|r| decode(&r.value));
            if last.as_ref() != Some(&current) {
                return Ok(current);
            }
            let (key, version) = match (leader, term) {
                (Some(leader), _) => (&self.leader_key, leader.version),
                (None, Some(term)) => (&self.term_key, term.version),
                (None, None) => {
                    // Nobody has ever campaigned: make the term record exist so there is
                    // something to wait on, then look again.
                    match self
                        .storage
                        .create(Record::new(self.term_key.clone(), Bytes::new()))
                        .await
                    {
                        Ok(_) | Err(Error::AlreadyExists(_)) => continue,
                        Err(error) => return Err(error),
                    }
                }
            };
            match self.storage.wait_for_version_change(key, &version).await {
                Ok(()) | Err(Error::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// Leading an [`Election`]; renews the lease in the background until resigned or lost.
///
/// Dropping it without [`resign`](Leadership::resign) stops renewing and resigns in the
/// background (or, outside a tokio runtime, lets the lease run out).
pub struct Leadership {
    hold: Hold,
    id: String,
    value: Bytes,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("id", &self.id)
            .field("token", &self.hold.token())
            .field("lost", &self.hold.is_lost())
            .finish()
    }
}

impl Leadership {
    /// The fencing token of this leadership (see [`LockGuard::token`](crate::LockGuard::token)).
    pub fn token(&self) -> &str {
        self.hold.token()
    }

    /// This leadership as observers see it.
    pub fn leader(&self) -> Leader {
        Leader {
            id: self.id.clone(),
            value: self.value.clone(),
        }
    }

    /// Resolves the moment leadership is lost (see [`LockGuard::lost`](crate::LockGuard::lost)).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.hold.lost()
    }

    /// Whether leadership has been lost.
    pub fn is_lost(&self) -> bool {
        self.hold.is_lost()
    }

    /// Steps down, if still leader; another candidate is woken and takes over.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] if leadership was already lost, or the store's error.
    pub async fn resign(self) -> Result<()> {
        self.hold.release().await
    }
}

/// The leader record's value: the leadership id, a newline, the candidate's value.
fn encode(id: &str, value: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(id.len() + 1 + value.len());
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(value);
    Bytes::from(bytes)
}

fn decode(bytes: &Bytes) -> Option<Leader> {
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let id = std::str::from_utf8(&bytes[..split]).ok()?.to_owned();
    Some(Leader {
        id,
        value: bytes.slice(split + 1..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage whose `get_many` breaks the contract: it answers no records at all.
    struct ShortGetMany(store_memory::MemoryStorage);

    #[async_trait::async_trait]
    impl store_core::Layer for ShortGetMany {
        type Inner = store_memory::MemoryStorage;
        fn inner(&self) -> &store_memory::MemoryStorage {
            &self.0
        }
        async fn get_many(&self, _keys: &[&str]) -> Result<Vec<Option<Record>>> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_short_get_many_answer_is_an_error_not_a_panic() {
        let storage: Arc<dyn Storage> = Arc::new(ShortGetMany(store_memory::MemoryStorage::new()));
        let election = Election::new(storage, "e", ElectionOptions::default());
        let first = election.observe().next().await.expect("the stream reports");
        match first {
            Err(Error::Backend(message)) => {
                assert!(message.contains("answered 0 records"), "{message}")
            }
            other => panic!("expected a Backend error, got {other:?}"),
        }
    }

    #[test]
    fn leader_records_round_trip() {
        let leader = decode(&encode("7-a-1", b"host:1\nwith newline")).unwrap();
        assert_eq!(leader.id, "7-a-1");
        assert_eq!(&leader.value[..], b"host:1\nwith newline");
        assert_eq!(decode(&Bytes::from_static(b"no separator")), None);
    }
}
