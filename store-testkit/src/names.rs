//! Random names for test data, so that tests (and concurrent test runs) sharing one server
//! never meet.

/// A fresh name `test-<label>-<pid>-<random>`, valid as a namespace, Redis prefix or
/// store name (see [`store_core::validate_name`]). Characters of `label` other than ASCII
/// letters, digits and `-` become `-`, and it is cut to 40 characters.
///
/// ```
/// let name = store_testkit::fresh_name("cas");
/// assert!(name.starts_with("test-cas-"));
/// assert!(store_core::validate_name(&name).is_ok());
/// assert_ne!(name, store_testkit::fresh_name("cas"));
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
