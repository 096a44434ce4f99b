//! Where the facade keeps a record in the storage beneath it: `database/table/key`.
//!
//! [`StoreAdapter`](crate::StoreAdapter) stores the record `key` of a database and table
//! under the storage key `database/table/key` (one namespace layer with the path
//! `database`, `table`), its value encoded by the [`envelope`](crate::envelope). Tools that
//! work on a whole stack below the facade (storectl's `databases`, `tables`, `snapshot`,
//! `restore`) use these functions to go between the two, so the layout is written down
//! once.
//!
//! Database and table names are `[A-Za-z0-9._-]+` (at most 255 bytes) and so never contain
//! the separator `/`; the facade key itself may contain it. A storage key is *in the
//! layout* when it has a valid database name, `/`, a valid table name, `/`, and a non-empty
//! key. Keys written through the unscoped storage may be anything else.
//!
//! ```
//! use store_compat::layout::{split_storage_key, storage_key};
//! let stored = storage_key("shop", "orders", "2024/42").unwrap();
//! assert_eq!(stored, "shop/orders/2024/42");
//! assert_eq!(split_storage_key(&stored), Some(("shop", "orders", "2024/42")));
//! assert_eq!(split_storage_key("lock"), None); // not a facade record
//! ```

use store_core::{validate_key, validate_name, Result};

use crate::adapter::check_name;

/// The separator between database, table and key.
///
/// ```
/// assert_eq!(store_compat::layout::SEPARATOR, '/');
/// ```
pub const SEPARATOR: char = '/';

/// The storage key of the facade record `key` in `database` and `table`.
///
/// An invalid database or table name is [`Error::InvalidName`](crate::Error::InvalidName)
/// naming which one; an empty key, or a storage key longer than
/// [`MAX_KEY_LEN`](store_core::MAX_KEY_LEN), is [`Error::InvalidKey`](crate::Error::InvalidKey).
///
/// ```
/// use store_compat::layout::storage_key;
/// assert_eq!(storage_key("micro", "micro", "k").unwrap(), "micro/micro/k");
/// assert!(storage_key("a/b", "t", "k").unwrap_err().to_string().contains("database"));
/// assert!(storage_key("d", "t", "").is_err());
/// ```
pub fn storage_key(database: &str, table: &str, key: &str) -> Result<String> {
    check_name("database", database)?;
    check_name("table", table)?;
    if key.is_empty() {
        validate_key(key)?;
    }
    let stored = format!("{database}{SEPARATOR}{table}{SEPARATOR}{key}");
    validate_key(&stored)?;
    Ok(stored)
}

/// The prefix of every storage key of `database` (`database/`), or of one table of it
/// (`database/table/`) when `table` is given. Names are checked as in [`storage_key`].
///
/// ```
/// use store_compat::layout::scope_prefix;
/// assert_eq!(scope_prefix("shop", None).unwrap(), "shop/");
/// assert_eq!(scope_prefix("shop", Some("orders")).unwrap(), "shop/orders/");
/// assert!(scope_prefix("", None).is_err());
/// ```
pub fn scope_prefix(database: &str, table: Option<&str>) -> Result<String> {
    check_name("database", database)?;
    match table {
        Some(table) => {
            check_name("table", table)?;
            Ok(format!("{database}{SEPARATOR}{table}{SEPARATOR}"))
        }
        None => Ok(format!("{database}{SEPARATOR}")),
    }
}

/// Splits a storage key into database, table and facade key, when it is in the layout
/// (see the module docs); `None` otherwise.
///
/// ```
/// use store_compat::layout::split_storage_key;
/// assert_eq!(split_storage_key("micro/micro/a/b"), Some(("micro", "micro", "a/b")));
/// assert_eq!(split_storage_key("micro/micro/"), None); // empty key
/// assert_eq!(split_storage_key("bad name/t/k"), None);
/// ```
pub fn split_storage_key(stored: &str) -> Option<(&str, &str, &str)> {
    let (database, rest) = stored.split_once(SEPARATOR)?;
    let (table, key) = rest.split_once(SEPARATOR)?;
    if key.is_empty() || validate_name(database).is_err() || validate_name(table).is_err() {
        return None;
    }
    Some((database, table, key))
}

/// Whether `c` may appear in a database or table name (`A-Z a-z 0-9 . _ -`).
///
/// ```
/// use store_compat::layout::is_name_char;
/// assert!(is_name_char('a') && is_name_char('-') && !is_name_char('/'));
/// ```
pub fn is_name_char(c: char) -> bool {
    // The one rule for names is store-core's.
    validate_name(c.encode_utf8(&mut [0; 4])).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, Store, StoreAdapter, WriteOptions};
    use store_core::Storage;

    #[tokio::test]
    async fn facade_records_live_at_their_storage_key() {
        let store = StoreAdapter::new(store_memory::MemoryStorage::new());
        let options = WriteOptions::default().database("shop").table("orders");
        store
            .write(Record::new("2024/42", "paid"), options)
            .await
            .unwrap();
        let stored = storage_key("shop", "orders", "2024/42").unwrap();
        assert_eq!(
            &store.storage().get(&stored).await.unwrap().value[..],
            b"paid"
        );
        assert_eq!(
            split_storage_key(&stored),
            Some(("shop", "orders", "2024/42"))
        );
        let prefix = scope_prefix("shop", Some("orders")).unwrap();
        assert!(stored.starts_with(&prefix));
    }

    #[test]
    fn keys_outside_the_layout_do_not_split() {
        for key in ["k", "a/b", "a/b/", "/b/c", "a//c", "a b/c/d", "ü/t/k"] {
            assert_eq!(split_storage_key(key), None, "{key:?}");
        }
        assert!(storage_key("d", "t", &"k".repeat(store_core::MAX_KEY_LEN)).is_err());
        for c in ['/', ' ', 'ü', '*'] {
            assert!(!is_name_char(c));
        }
    }
}
