//! `databases` and `tables`: the scopes that the facade's `database/table/key` layout holds,
//! found by probing the ordered key listing rather than reading every key.
//!
//! Keys come from [`Storage::list_keys`] in ascending byte order, and a pattern with a
//! literal prefix only visits keys under it. Once a name `n` is found, every key under
//! `n/` is skipped: the next candidate is the first key of the smallest prefix that sorts
//! after all of them, found by trying, from the last position back, each character that may
//! appear in a name (or `/`) above the one in place. Each try reads at most the first key
//! (one page) of one literal prefix, so the work grows with the number of scopes and the
//! length of their names, not with the number of records.

use futures::StreamExt;
use store_compat::layout::{SEPARATOR, is_name_char, scope_prefix, split_storage_key};
use store_core::{Pattern, Storage};

use crate::error::{CliError, Result};

/// The characters a probe tries, in byte order: the name characters and the separator.
fn alphabet() -> impl Iterator<Item = char> + Clone {
    (0x21u8..0x7f)
        .map(char::from)
        .filter(|c| is_name_char(*c) || *c == SEPARATOR)
}

/// Up to `n` keys of `storage` that start with `prefix`, ascending.
async fn first_keys(storage: &dyn Storage, prefix: &str, n: usize) -> Result<Vec<String>> {
    let pattern = format!("{}*", Pattern::escape(prefix));
    let stream = storage
        .list_keys(&pattern)
        .await
        .map_err(|e| CliError::store(format!("listing keys under {prefix:?}"), e))?;
    let keys: Vec<store_core::Result<String>> = stream.take(n).collect().await;
    keys.into_iter()
        .collect::<store_core::Result<Vec<_>>>()
        .map_err(|e| CliError::store(format!("listing keys under {prefix:?}"), e))
}

/// The first key under `base` that sorts after every key starting with `done`
/// (`done` starts with `base`), or after the key `done` itself when `exact`. Only keys
/// whose characters from `base` on are name characters or `/` up to the point they differ
/// from `done` are looked for (others cannot hold a valid name there).
async fn next_after(
    storage: &dyn Storage,
    base: &str,
    done: &str,
    exact: bool,
) -> Result<Option<String>> {
    if exact {
        // Longer keys that start with `done` come right after it.
        for c in alphabet() {
            let probe = format!("{done}{c}");
            if let Some(key) = first_keys(storage, &probe, 1).await?.pop() {
                return Ok(Some(key));
            }
        }
    }
    // Then, from the last character back to `base`, a larger character in its place.
    let positions: Vec<(usize, char)> = done[base.len()..]
        .char_indices()
        .map(|(i, c)| (base.len() + i, c))
        .collect();
    for &(at, current) in positions.iter().rev() {
        for c in alphabet().filter(|c| *c > current) {
            let probe = format!("{}{c}", &done[..at]);
            if let Some(key) = first_keys(storage, &probe, 1).await?.pop() {
                return Ok(Some(key));
            }
        }
    }
    Ok(None)
}

/// The names `n` such that some key is `base` + `n` + `/` + at least one more character,
/// in key order.
async fn names_under(storage: &dyn Storage, base: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut next = first_keys(storage, base, 1).await?.pop();
    while let Some(key) = next {
        let segment = &key[base.len()..];
        let name_len = segment
            .char_indices()
            .find(|(_, c)| !is_name_char(*c))
            .map_or(segment.len(), |(i, _)| i);
        let name = &segment[..name_len];
        let after = segment[name_len..].chars().next();
        next = match after {
            Some(SEPARATOR) if !name.is_empty() => {
                let scope = format!("{base}{name}{SEPARATOR}");
                // The key may be the scope prefix itself; a longer one proves the name.
                if key.len() > scope.len() || first_keys(storage, &scope, 2).await?.len() > 1 {
                    names.push(name.to_owned());
                }
                next_after(storage, base, &scope, false).await?
            }
            // The key ends inside the name: longer keys may still hold it.
            None => next_after(storage, base, &key, true).await?,
            // A character no name has: nothing under it is a scope.
            Some(bad) => {
                let done = format!("{base}{name}{bad}");
                next_after(storage, base, &done, false).await?
            }
        };
    }
    Ok(names)
}

/// The tables of `database` that hold at least one facade record, in key order.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// let memory = store_memory::MemoryStorage::new();
/// for key in ["shop/orders/1", "shop/users/a/b", "shop/x", "other/t/k"] {
///     memory.put(Record::new(key, "v")).await.unwrap();
/// }
/// assert_eq!(store_cli::scopes::tables(&memory, "shop").await.unwrap(), ["orders", "users"]);
/// # });
/// ```
pub async fn tables(storage: &dyn Storage, database: &str) -> Result<Vec<String>> {
    let base = scope_prefix(database, None)
        .map_err(|e| CliError::store(format!("tables of database {database:?}"), e))?;
    let mut tables = names_under(storage, &base).await?;
    tables.retain(|table| split_storage_key(&format!("{base}{table}/x")).is_some());
    Ok(tables)
}

/// The databases that hold at least one facade record (`database/table/key` with valid
/// names and a non-empty key), in key order.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use store_core::{Record, Storage};
/// let memory = store_memory::MemoryStorage::new();
/// for key in ["micro/micro/k", "shop/orders/1", "lock", "notes/only-two"] {
///     memory.put(Record::new(key, "v")).await.unwrap();
/// }
/// assert_eq!(store_cli::scopes::databases(&memory).await.unwrap(), ["micro", "shop"]);
/// # });
/// ```
pub async fn databases(storage: &dyn Storage) -> Result<Vec<String>> {
    let mut databases = Vec::new();
    for database in names_under(storage, "").await? {
        if !tables(storage, &database).await?.is_empty() {
            databases.push(database);
        }
    }
    Ok(databases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use store_core::Record;

    /// Every (database, table) pair the scopes report equals the set computed by reading
    /// every key.
    async fn check(keys: &[&str]) {
        let memory = store_memory::MemoryStorage::new();
        for key in keys {
            memory.put(Record::new(*key, "v")).await.unwrap();
        }
        let mut expected: Vec<(String, String)> = keys
            .iter()
            .filter_map(|k| split_storage_key(k))
            .map(|(d, t, _)| (d.to_owned(), t.to_owned()))
            .collect();
        expected.sort_by(|a, b| format!("{}/{}/", a.0, a.1).cmp(&format!("{}/{}/", b.0, b.1)));
        expected.dedup();
        let mut found = Vec::new();
        for database in databases(&memory).await.unwrap() {
            for table in tables(&memory, &database).await.unwrap() {
                found.push((database.clone(), table));
            }
        }
        assert_eq!(found, expected, "keys {keys:?}");
    }

    #[tokio::test]
    async fn scopes_match_a_full_scan() {
        check(&[]).await;
        check(&["micro/micro/k"]).await;
        check(&["a/b/c", "a-b/c/d", "a.b/c/d", "a/b-c/d", "ab/c/d", "a0/x/y"]).await;
        check(&["a", "a/", "a/b", "a/b/", "a/b/c", "b/c/d"]).await;
        check(&["ü/t/k", "x ü/t/k", "x/ü/k", "x/t ü/k", "x/t/ü", "z/z/z"]).await;
        check(&["/a/b", "a//b", "-/-/-", "_/_/_", "Z/Z/Z", "9/9/9"]).await;
        check(&[
            "db/t1/k", "db/t1/l", "db/t2/k", "db/t10/k", "dc/t/k", "d/t/k",
        ])
        .await;
    }

    /// Counts the keys that listings hand out (whatever the consumer takes of them).
    struct Counting {
        inner: store_memory::MemoryStorage,
        keys: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl store_core::Layer for Counting {
        type Inner = store_memory::MemoryStorage;
        fn inner(&self) -> &store_memory::MemoryStorage {
            &self.inner
        }
        async fn list_keys(&self, pattern: &str) -> store_core::Result<store_core::KeyStream> {
            let keys = self.keys.clone();
            let stream = Storage::list_keys(&self.inner, pattern).await?;
            Ok(stream
                .inspect(move |_| {
                    keys.fetch_add(1, Ordering::Relaxed);
                })
                .boxed())
        }
    }

    #[tokio::test]
    async fn many_records_in_few_scopes_need_few_probes() {
        let memory = store_memory::MemoryStorage::new();
        let records: Vec<Record> = (0..20_000)
            .map(|i| Record::new(format!("db{}/t{}/{i:05}", i % 3, i % 2), "v"))
            .collect();
        memory.put_many(records).await.unwrap();
        let keys = Arc::new(AtomicUsize::new(0));
        let counting = Counting {
            inner: memory,
            keys: keys.clone(),
        };
        let databases = databases(&counting).await.unwrap();
        assert_eq!(databases, ["db0", "db1", "db2"]);
        for database in databases {
            assert_eq!(tables(&counting, &database).await.unwrap(), ["t0", "t1"]);
        }
        let taken = keys.load(Ordering::Relaxed);
        assert!(taken < 2000, "{taken} keys taken from listings of 20000");
    }
}
