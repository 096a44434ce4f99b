//! Listing in pages: one stream shape for every backend.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;

use crate::{KeyStream, Pattern, Result};

/// Turns a paged listing into a [`KeyStream`]: yields the keys of `first`, then calls
/// `fetch(cursor)` for the next page whenever the consumer has taken every key of the
/// previous one, until a page comes back without a cursor.
///
/// A page is fetched only when it is needed, so a consumer that stops early costs nothing
/// more, and a backend never collects a whole listing in memory. An error from `fetch` is
/// yielded once and ends the stream.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use futures::TryStreamExt;
/// // Pages of two keys from a sorted list, the cursor being the last key sent.
/// let all: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
/// let page = move |after: Option<String>| {
///     let rest: Vec<String> = all.iter().filter(|k| after.as_ref().is_none_or(|a| *k > a)).cloned().collect();
///     let keys: Vec<String> = rest.iter().take(2).cloned().collect();
///     let next = (rest.len() > 2).then(|| keys[1].clone());
///     (keys, next)
/// };
/// let (first, next) = page(None);
/// let stream = store_core::paging::key_stream(first, next, move |after| {
///     let page = page.clone();
///     async move { Ok(page(Some(after))) }
/// });
/// let keys: Vec<String> = stream.try_collect().await.unwrap();
/// assert_eq!(keys, ["a", "b", "c", "d", "e"]);
/// # });
/// ```
pub fn key_stream<F, Fut>(first: Vec<String>, next: Option<String>, fetch: F) -> KeyStream
where
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<String>, Option<String>)>> + Send + 'static,
{
    struct Cursor<F> {
        keys: std::vec::IntoIter<String>,
        next: Option<String>,
        fetch: F,
        failed: bool,
    }
    let cursor = Cursor {
        keys: first.into_iter(),
        next,
        fetch,
        failed: false,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(key) = cursor.keys.next() {
                return Some((Ok(key), cursor));
            }
            if cursor.failed {
                return None;
            }
            let after = cursor.next.take()?;
            match (cursor.fetch)(after).await {
                Ok((keys, next)) => {
                    cursor.keys = keys.into_iter();
                    cursor.next = next;
                }
                Err(error) => {
                    cursor.failed = true;
                    return Some((Err(error), cursor));
                }
            }
        }
    })
    .boxed()
}

/// Keeps the keys of `keys` that `pattern` matches; errors pass through.
///
/// For a backend that pages through a key range (the pattern's literal prefix) and leaves
/// the rest of the pattern to the lister: the matching then runs in the task that consumes
/// the stream, so an expensive pattern costs its own caller, not the actor or the server
/// that every caller shares.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use futures::TryStreamExt;
/// use store_core::paging::{key_stream, matching};
/// use store_core::Pattern;
///
/// let pattern = Arc::new(Pattern::new("jobs/*/done").unwrap());
/// let candidates = ["jobs/1/done", "jobs/1/queued", "jobs/2/done"].map(String::from).to_vec();
/// let page = key_stream(candidates, None, |_| async { Ok((Vec::new(), None)) });
/// let keys: Vec<String> = matching(page, pattern).try_collect().await.unwrap();
/// assert_eq!(keys, ["jobs/1/done", "jobs/2/done"]);
/// # });
/// ```
pub fn matching(keys: KeyStream, pattern: Arc<Pattern>) -> KeyStream {
    keys.filter(move |key| {
        std::future::ready(match key {
            Ok(key) => pattern.matches(key),
            Err(_) => true,
        })
    })
    .boxed()
}
