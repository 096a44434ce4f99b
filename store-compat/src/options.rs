//! The option builders: [`Options`] for the store, and one per call ([`ReadOptions`],
//! [`WriteOptions`], [`ListOptions`], [`DeleteOptions`]), plus the result [`Order`].
//!
//! They mirror go-micro's functional options (`store.ReadPrefix()`, `store.ReadLimit(5)`,
//! `store.WriteTTL(d)`, `store.ListFrom(db, table)`, ...) as plain structs with public fields
//! and chainable builder methods:
//!
//! | go-micro                                   | here                                              |
//! |--------------------------------------------|---------------------------------------------------|
//! | `store.Database("db"), store.Table("t")`   | `Options::default().database("db").table("t")`    |
//! | `store.ReadPrefix(), store.ReadSuffix()`   | `ReadOptions::default().prefix().suffix()`        |
//! | `store.ReadLimit(5), store.ReadOffset(2)`  | `ReadOptions::default().limit(5).offset(2)`       |
//! | `store.ReadFrom("db", "t")`                | `ReadOptions::default().database("db").table("t")`|
//! | `store.WriteTTL(d), store.WriteExpiry(t)`  | `WriteOptions::default().ttl(d).expiry(t)`        |
//! | `store.ListPrefix("p"), store.ListSuffix("s")` | `ListOptions::default().prefix("p").suffix("s")` |
//! | `store.DeleteFrom("db", "t")`              | `DeleteOptions::default().database("db").table("t")` |
//! | `store.OrderDesc` (micro/micro)            | `.order(Order::Descending)`                       |
//!
//! The structs are `#[non_exhaustive]` so that an option go-micro adds later is not a
//! breaking change here: build them with `default()` and the builder methods, and read
//! their public fields.
//!
//! In the per-call options an empty `database` or `table` (the default) means "the store's
//! current default", exactly as go-micro treats an empty `Database`/`Table`.

use std::time::{Duration, SystemTime};

// The builder methods that several option structs share are written once, here: where a
// call goes (`database`, `table`: every struct) and how its matches are paged (`limit`,
// `offset`, `order`: reads and lists). A macro, because the alternatives break callers: a
// trait would have to be imported to call them, and a shared inner struct would move the
// public fields.

/// `database` and `table` setters for `$ty`, documented with `$database` / `$table`.
macro_rules! scope_setters {
    ($ty:ident, $database:literal, $table:literal) => {
        impl $ty {
            #[doc = $database]
            ///
            /// ```
            #[doc = concat!("assert_eq!(store_compat::", stringify!($ty), "::default().database(\"db\").database, \"db\");")]
            /// ```
            pub fn database(mut self, database: impl Into<String>) -> Self {
                self.database = database.into();
                self
            }

            #[doc = $table]
            ///
            /// ```
            #[doc = concat!("assert_eq!(store_compat::", stringify!($ty), "::default().table(\"t\").table, \"t\");")]
            /// ```
            pub fn table(mut self, table: impl Into<String>) -> Self {
                self.table = table.into();
                self
            }
        }
    };
}

/// `limit`, `offset` and `order` setters for `$ty`, whose matches are `$things`; `$call`
/// names go-micro's options (`store.ReadLimit`, `store.ListLimit`, ...).
macro_rules! paging_setters {
    ($ty:ident, $things:literal, $call:literal) => {
        impl $ty {
            #[doc = concat!("Returns at most `limit` ", $things, "; 0 means no limit (go-micro's `store.", $call, "Limit`).")]
            ///
            /// ```
            #[doc = concat!("assert_eq!(store_compat::", stringify!($ty), "::default().limit(5).limit, 5);")]
            /// ```
            pub fn limit(mut self, limit: usize) -> Self {
                self.limit = limit;
                self
            }

            #[doc = concat!("Skips the first `offset` matching ", $things, " (go-micro's `store.", $call, "Offset`).")]
            ///
            /// ```
            #[doc = concat!("assert_eq!(store_compat::", stringify!($ty), "::default().offset(2).offset, 2);")]
            /// ```
            pub fn offset(mut self, offset: usize) -> Self {
                self.offset = offset;
                self
            }

            #[doc = concat!("Sets the order of the matching ", $things, ".")]
            ///
            /// ```
            #[doc = concat!("use store_compat::{Order, ", stringify!($ty), "};")]
            #[doc = concat!("assert_eq!(", stringify!($ty), "::default().order(Order::Descending).order, Order::Descending);")]
            /// ```
            pub fn order(mut self, order: Order) -> Self {
                self.order = order;
                self
            }
        }
    };
}

/// The database used when neither [`Store::init`](crate::Store::init) nor a call names one
/// (go-micro's `DefaultDatabase`).
///
/// ```
/// assert_eq!(store_compat::DEFAULT_DATABASE, "micro");
/// ```
pub const DEFAULT_DATABASE: &str = "micro";

/// The table used when neither [`Store::init`](crate::Store::init) nor a call names one
/// (go-micro's `DefaultTable`).
///
/// ```
/// assert_eq!(store_compat::DEFAULT_TABLE, "micro");
/// ```
pub const DEFAULT_TABLE: &str = "micro";

/// The store-wide options: the default database and table.
///
/// [`Store::init`](crate::Store::init) replaces both; [`Store::options`](crate::Store::options)
/// returns the current ones. Names are `[A-Za-z0-9._-]+` (at most 255 bytes); other names
/// are rejected with [`Error::InvalidName`](crate::Error::InvalidName) when used.
///
/// ```
/// use store_compat::Options;
/// let options = Options::default().database("orders").table("pending");
/// assert_eq!((options.database.as_str(), options.table.as_str()), ("orders", "pending"));
/// assert_eq!(Options::default().database, "micro");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to a store call"]
pub struct Options {
    /// The default database (go-micro: "allows multiple isolated stores to be kept in one backend").
    pub database: String,
    /// The default table (go-micro: "a key prefix in KV backends").
    pub table: String,
}

impl Default for Options {
    /// `micro` / `micro`, go-micro's defaults.
    fn default() -> Self {
        Self {
            database: DEFAULT_DATABASE.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

scope_setters!(
    Options,
    "Sets the database (go-micro's `store.Database`).",
    "Sets the table (go-micro's `store.Table`)."
);

/// The order in which prefix/suffix reads and lists return keys (before offset and limit).
///
/// Keys compare as bytes (the order of Rust's `str` and Go's `string` comparisons).
///
/// ```
/// use store_compat::{ListOptions, Order};
/// assert_eq!(Order::default(), Order::Ascending);
/// let newest_first = ListOptions::default().order(Order::Descending);
/// assert_eq!(newest_first.order, Order::Descending);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Smallest key first (micro/micro's `OrderAsc`, the default).
    #[default]
    Ascending,
    /// Largest key first (micro/micro's `OrderDesc`).
    Descending,
}

/// Options for one [`Store::read`](crate::Store::read).
///
/// Without `prefix` or `suffix` a read returns exactly the record under `key` or
/// [`Error::NotFound`](crate::Error::NotFound). With either flag, `key` is the pattern: the
/// read returns every live record whose key starts with it (`prefix`), ends with it
/// (`suffix`), or both (both flags: the key must start *and* end with it), possibly none.
/// Matching records are ordered, then `offset` are skipped, then at most `limit`
/// (0: all) are returned.
///
/// ```
/// use store_compat::{Order, ReadOptions};
/// let page = ReadOptions::default().prefix().limit(10).offset(20).order(Order::Descending);
/// assert!(page.prefix && !page.suffix);
/// assert_eq!((page.limit, page.offset), (10, 20));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to a store call"]
pub struct ReadOptions {
    /// Database to read from; empty: the store's default.
    pub database: String,
    /// Table to read from; empty: the store's default.
    pub table: String,
    /// Return every record whose key starts with the read key.
    pub prefix: bool,
    /// Return every record whose key ends with the read key.
    pub suffix: bool,
    /// Most records returned by a prefix/suffix read; 0 means no limit.
    pub limit: usize,
    /// Matching records skipped before the first one returned.
    pub offset: usize,
    /// Order of the matching records, applied before `offset` and `limit`.
    pub order: Order,
}

impl ReadOptions {
    /// Treats the read key as a prefix (go-micro's `store.ReadPrefix()`).
    ///
    /// ```
    /// assert!(store_compat::ReadOptions::default().prefix().prefix);
    /// ```
    pub fn prefix(mut self) -> Self {
        self.prefix = true;
        self
    }

    /// Treats the read key as a suffix (go-micro's `store.ReadSuffix()`).
    ///
    /// ```
    /// assert!(store_compat::ReadOptions::default().suffix().suffix);
    /// ```
    pub fn suffix(mut self) -> Self {
        self.suffix = true;
        self
    }
}

scope_setters!(
    ReadOptions,
    "Reads from `database` instead of the store's default.",
    "Reads from `table` instead of the store's default."
);
paging_setters!(ReadOptions, "records", "Read");

/// Options for one [`Store::write`](crate::Store::write).
///
/// The record's expiry comes from, in order of precedence: `ttl` (from now), `expiry` (an
/// absolute time), then the record's own [`expiry`](crate::Record::expiry). A zero `ttl` or
/// record expiry means "not set", as Go's zero values do. A resulting expiry that is not in
/// the future makes the write remove the key: the record is born expired.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use store_compat::WriteOptions;
/// let options = WriteOptions::default()
///     .ttl(Duration::from_secs(30))                                // wins
///     .expiry(SystemTime::now() + Duration::from_secs(3600))
///     .table("sessions");
/// assert_eq!(options.ttl, Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to a store call"]
pub struct WriteOptions {
    /// Database to write to; empty: the store's default.
    pub database: String,
    /// Table to write to; empty: the store's default.
    pub table: String,
    /// Time to live from the write (go-micro's `WriteTTL`); wins over `expiry`.
    pub ttl: Option<Duration>,
    /// Absolute expiry time (go-micro's `WriteExpiry`); wins over the record's expiry.
    pub expiry: Option<SystemTime>,
}

impl WriteOptions {
    /// Expires the record `ttl` after the write (go-micro's `store.WriteTTL`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = store_compat::WriteOptions::default().ttl(Duration::from_secs(1));
    /// assert_eq!(options.ttl, Some(Duration::from_secs(1)));
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Expires the record at `at` (go-micro's `store.WriteExpiry`).
    ///
    /// ```
    /// let at = std::time::SystemTime::now();
    /// assert_eq!(store_compat::WriteOptions::default().expiry(at).expiry, Some(at));
    /// ```
    pub fn expiry(mut self, at: SystemTime) -> Self {
        self.expiry = Some(at);
        self
    }
}

scope_setters!(
    WriteOptions,
    "Writes to `database` instead of the store's default.",
    "Writes to `table` instead of the store's default."
);

/// Options for one [`Store::list`](crate::Store::list).
///
/// Lists the live keys that start with `prefix` and end with `suffix` (empty: no
/// constraint), ordered, then skips `offset`, then returns at most `limit` (0: all).
/// Both strings are literal text: `*`, `?`, `[`, `{` and `\` in them match only themselves.
///
/// ```
/// use store_compat::ListOptions;
/// let options = ListOptions::default().prefix("user/").suffix(".json").limit(100);
/// assert_eq!(options.prefix, "user/");
/// assert_eq!(options.suffix, ".json");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to a store call"]
pub struct ListOptions {
    /// Database to list; empty: the store's default.
    pub database: String,
    /// Table to list; empty: the store's default.
    pub table: String,
    /// Only keys starting with this text; empty: every key.
    pub prefix: String,
    /// Only keys ending with this text; empty: every key.
    pub suffix: String,
    /// Most keys returned; 0 means no limit.
    pub limit: usize,
    /// Matching keys skipped before the first one returned.
    pub offset: usize,
    /// Order of the matching keys, applied before `offset` and `limit`.
    pub order: Order,
}

impl ListOptions {
    /// Lists only keys starting with `prefix` (go-micro's `store.ListPrefix`).
    ///
    /// ```
    /// assert_eq!(store_compat::ListOptions::default().prefix("p").prefix, "p");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Lists only keys ending with `suffix` (go-micro's `store.ListSuffix`).
    ///
    /// ```
    /// assert_eq!(store_compat::ListOptions::default().suffix("s").suffix, "s");
    /// ```
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = suffix.into();
        self
    }
}

scope_setters!(
    ListOptions,
    "Lists `database` instead of the store's default.",
    "Lists `table` instead of the store's default."
);
paging_setters!(ListOptions, "keys", "List");

/// Options for one [`Store::delete`](crate::Store::delete).
///
/// ```
/// let options = store_compat::DeleteOptions::default().database("db").table("t");
/// assert_eq!((options.database.as_str(), options.table.as_str()), ("db", "t"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[must_use = "options do nothing until passed to a store call"]
pub struct DeleteOptions {
    /// Database to delete from; empty: the store's default.
    pub database: String,
    /// Table to delete from; empty: the store's default.
    pub table: String,
}

scope_setters!(
    DeleteOptions,
    "Deletes from `database` instead of the store's default.",
    "Deletes from `table` instead of the store's default."
);
