//! Random names for test data, so that tests (and concurrent test runs) sharing one server
//! never meet. Nothing here is Redis-specific.

/// A fresh name `test-<label>-<pid>-<random>`, valid as a namespace, prefix or table name.
///
/// ```
/// let name = store_redis::testing::fresh_name("cas");
/// assert!(name.starts_with("test-cas-"));
/// assert!(store_core::validate_name(&name).is_ok());
/// ```
pub fn fresh_name(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "test-{label}-{}-{:012x}",
        std::process::id(),
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}
