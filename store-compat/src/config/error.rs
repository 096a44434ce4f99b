//! [`ConfigError`]: why a configuration could not be read or built.

use std::path::PathBuf;

use super::Backend;

/// Why a configuration could not be read or built. Every message names the field or
/// section, the bad value and what is accepted.
///
/// ```
/// let err = store_compat::config::StoreConfig::from_toml_str("backend = \"mongo\"").unwrap_err();
/// assert!(err.to_string().contains("unknown backend"));
/// assert!(err.to_string().contains("memory, file, redis, postgres"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML is malformed or a field has a bad value; the message gives line and column.
    #[error("invalid store configuration: {0}")]
    Parse(String),
    /// The configuration file could not be read.
    #[error("reading the store configuration {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A section the chosen backend needs is absent.
    #[error(
        "invalid store configuration: backend = {backend:?} needs a [{section}] section ({hint})"
    )]
    MissingSection {
        /// The backend that needs it.
        backend: &'static str,
        /// The missing section.
        section: &'static str,
        /// What the section must hold.
        hint: &'static str,
    },
    /// A backend's section is present but another backend is chosen: the settings would be
    /// ignored, which is almost always a mistake (a forgotten `backend = ...`).
    #[error(
        "invalid store configuration: the [{section}] section configures backend \
         \"{section}\", but backend = \"{backend}\"; remove the section or set \
         backend = \"{section}\""
    )]
    UnusedSection {
        /// The section that would be ignored.
        section: &'static str,
        /// The backend that is chosen.
        backend: Backend,
    },
    /// The configuration names a backend or layer whose cargo feature is off in this build.
    #[error("invalid store configuration: {0}")]
    FeatureOff(String),
    /// A field's value is out of range or not accepted.
    #[error("invalid store configuration: field `{field}` = {value}: {accepted}")]
    Invalid {
        /// The field, dotted (`file.compact_garbage_ratio`).
        field: &'static str,
        /// The value found.
        value: String,
        /// What is accepted.
        accepted: String,
    },
    /// Building the stack failed (for example, the file backend could not open its directory).
    #[error("building the store: {0}")]
    Build(#[from] store_core::Error),
}
