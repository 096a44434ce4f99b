//! Sections whose backend or layer this build does not have: reading one is an error that
//! says which cargo feature of store-compat to turn on, where the file has it.
//!
//! `StoreConfig` keeps a private field of type `Option<Never>` for each such section, read
//! with one of the functions below, so that `[redis]` in a build without the `redis`
//! feature is "needs the `redis` feature" rather than "unknown field `redis`".

use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer};

/// A section that cannot be present: its reader always fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // unused when every backend and layer is compiled in
pub(crate) enum Never {}

/// The message for a section (`[file]`, `[cache]`) whose feature (of the same name) is off.
#[allow(dead_code)] // unused when every backend and layer is compiled in
pub(crate) fn section_needs_feature(section: &str) -> String {
    format!(
        "the [{section}] section needs the `{section}` feature of store-compat, which this \
         build does not have (enable it in Cargo.toml: store-compat = {{ features = \
         [\"{section}\"] }})"
    )
}

#[allow(dead_code)] // unused when every backend and layer is compiled in
fn refuse<'de, D: Deserializer<'de>>(
    deserializer: D,
    section: &str,
) -> Result<Option<Never>, D::Error> {
    IgnoredAny::deserialize(deserializer)?;
    Err(D::Error::custom(section_needs_feature(section)))
}

#[cfg(not(feature = "memory"))]
pub(crate) fn memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Never>, D::Error> {
    refuse(d, "memory")
}

#[cfg(not(feature = "file"))]
pub(crate) fn file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Never>, D::Error> {
    refuse(d, "file")
}

#[cfg(not(feature = "cache"))]
pub(crate) fn cache<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Never>, D::Error> {
    refuse(d, "cache")
}

#[cfg(not(feature = "redis"))]
pub(crate) fn redis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Never>, D::Error> {
    refuse(d, "redis")
}

#[cfg(not(feature = "postgres"))]
pub(crate) fn postgres<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Never>, D::Error> {
    refuse(d, "postgres")
}
