//! [`Backend`]: the backends a configuration can name, and which of them this build has.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The backends a configuration can name (`backend = "..."`).
///
/// Every name is known whatever the build, so that a configuration naming a backend whose
/// cargo feature is off gets an error that says which feature to turn on, not "unknown
/// backend". [`Backend::is_compiled`] tells whether this build has it.
///
/// ```
/// use store_compat::config::Backend;
/// assert_eq!("file".parse::<Backend>().unwrap(), Backend::File);
/// assert_eq!(Backend::Redis.feature(), "redis");
/// assert_eq!(Backend::Redis.is_compiled(), cfg!(feature = "redis"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// `"memory"`: the in-memory backend (nothing survives the process); optional
    /// `[memory]` section. Feature `memory`.
    Memory,
    /// `"file"`: the durable file backend; needs a `[file]` section. Feature `file`.
    File,
    /// `"redis"`: shared state on a Redis server; needs a `[redis]` section
    /// (`store_redis::RedisConfig`). Feature `redis`.
    Redis,
    /// `"postgres"`: shared, durable state in PostgreSQL; needs a `[postgres]` section.
    /// Feature `postgres` (store-postgres).
    Postgres,
}

impl Backend {
    /// Every backend, in the order messages list them.
    pub const ALL: &'static [Backend] = &[
        Backend::Memory,
        Backend::File,
        Backend::Redis,
        Backend::Postgres,
    ];

    /// Every backend name a configuration may use.
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::NAMES, ["memory", "file", "redis", "postgres"]);
    /// ```
    pub const NAMES: &'static [&'static str] = &["memory", "file", "redis", "postgres"];

    /// The name used in configuration files (and go-micro's `String()` of such a store).
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::Memory.name(), "memory");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::File => "file",
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        }
    }

    /// The cargo feature of store-compat that compiles this backend in (its name).
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::Postgres.feature(), "postgres");
    /// ```
    pub fn feature(self) -> &'static str {
        self.name()
    }

    /// The configuration section that holds this backend's settings (its name).
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::File.section(), "file");
    /// ```
    pub fn section(self) -> &'static str {
        self.name()
    }

    /// Whether this build of store-compat has the backend (its feature is on).
    ///
    /// ```
    /// assert_eq!(store_compat::config::Backend::Memory.is_compiled(), cfg!(feature = "memory"));
    /// ```
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Memory => cfg!(feature = "memory"),
            Backend::File => cfg!(feature = "file"),
            // The network backends' features flip these when they land.
            Backend::Redis => cfg!(feature = "redis"),
            Backend::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// The backends this build has, comma-separated (`"memory, file"`), or `"none"`.
    ///
    /// ```
    /// # #[cfg(all(feature = "memory", feature = "file", not(feature = "redis"), not(feature = "postgres")))]
    /// assert_eq!(store_compat::config::Backend::compiled_names(), "memory, file");
    /// # #[cfg(all(feature = "memory", feature = "file", feature = "redis", feature = "postgres"))]
    /// assert_eq!(store_compat::config::Backend::compiled_names(), "memory, file, redis, postgres");
    /// ```
    pub fn compiled_names() -> String {
        let names: Vec<&str> = Self::ALL
            .iter()
            .filter(|b| b.is_compiled())
            .map(|b| b.name())
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Checks that this build has the backend; the error says which feature to turn on.
    ///
    /// ```
    /// # #[cfg(not(feature = "postgres"))] {
    /// let err = store_compat::config::Backend::Postgres.check_compiled().unwrap_err();
    /// assert!(err.contains("backend `postgres` needs the `postgres` feature of store-compat"));
    /// # }
    /// ```
    pub fn check_compiled(self) -> Result<(), String> {
        if self.is_compiled() {
            Ok(())
        } else {
            Err(format!(
                "backend `{}` needs the `{}` feature of store-compat, which this build does \
                 not have (backends in this build: {})",
                self.name(),
                self.feature(),
                Self::compiled_names()
            ))
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    /// Any known name, compiled in or not; see [`Backend::check_compiled`].
    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.name() == name)
            .ok_or_else(|| {
                format!(
                    "field `backend` = {name:?}: unknown backend; known backends are {} \
                     (backends in this build: {})",
                    Self::NAMES.join(", "),
                    Self::compiled_names()
                )
            })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Backend {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Backend {
    /// A known name whose feature is on; the error names the field, the value and either
    /// the known backends or the feature to turn on.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = store_core::config::text(
            deserializer,
            "backend",
            &format!("accepted are {}", quoted_names()),
        )?;
        let backend: Backend = name.parse().map_err(serde::de::Error::custom)?;
        backend.check_compiled().map_err(|why| {
            serde::de::Error::custom(format_args!("field `backend` = {name:?}: {why}"))
        })?;
        Ok(backend)
    }
}

fn quoted_names() -> String {
    let names: Vec<String> = Backend::NAMES.iter().map(|n| format!("{n:?}")).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), *backend);
            assert_eq!(backend.to_string(), backend.name());
        }
        let err = "mongo".parse::<Backend>().unwrap_err();
        assert!(err.contains("\"mongo\"") && err.contains("memory, file, redis, postgres"));
    }

    #[test]
    fn the_network_backends_follow_their_features() {
        assert_eq!(
            Backend::Redis.check_compiled().is_ok(),
            cfg!(feature = "redis")
        );
        if let Err(err) = Backend::Redis.check_compiled() {
            assert!(err.contains("`redis` feature of store-compat"), "{err}");
        }
        let postgres = Backend::Postgres.check_compiled();
        assert_eq!(postgres.is_ok(), cfg!(feature = "postgres"));
        if let Err(err) = postgres {
            assert!(err.contains("`postgres` feature of store-compat"));
        }
    }

    #[test]
    fn compiled_backends_follow_the_features() {
        assert_eq!(
            Backend::Memory.check_compiled().is_ok(),
            cfg!(feature = "memory")
        );
        assert_eq!(
            Backend::File.check_compiled().is_ok(),
            cfg!(feature = "file")
        );
        let names = Backend::compiled_names();
        assert_eq!(names.contains("memory"), cfg!(feature = "memory"));
        assert_eq!(names.contains("file"), cfg!(feature = "file"));
    }
}
