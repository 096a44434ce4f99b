//! Key validation: the one place that decides which keys are usable.

use crate::{Error, Result};

/// The longest key, in bytes, that every backend accepts.
///
/// Layers that add a prefix (the namespace layer) check the caller's key against this limit
/// minus their prefix, so a key that is accepted at the top of a stack is accepted below it.
pub const MAX_KEY_LEN: usize = 4096;

/// Checks that `key` is usable: non-empty and at most [`MAX_KEY_LEN`] bytes.
///
/// ```
/// use store_core::{validate_key, Error};
/// assert!(validate_key("users/1").is_ok());
/// assert!(matches!(validate_key(""), Err(Error::InvalidKey(_))));
/// ```
pub fn validate_key(key: &str) -> Result<()> {
    validate_key_within(key, MAX_KEY_LEN)
}

/// Like [`validate_key`] with a smaller limit, for layers that prefix keys: they check the
/// caller's key against [`MAX_KEY_LEN`] minus their prefix, so the stored key always fits.
///
/// ```
/// use store_core::{validate_key_within, Error};
/// assert!(validate_key_within("abc", 3).is_ok());
/// let err = validate_key_within("abcd", 3).unwrap_err();
/// assert!(err.to_string().contains("at most 3 bytes"));
/// ```
pub fn validate_key_within(key: &str, limit: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey(
            "\"\": keys must be non-empty UTF-8 strings".into(),
        ));
    }
    if key.len() > limit {
        return Err(Error::InvalidKey(format!(
            "{} ({} bytes): keys are at most {limit} bytes",
            shorten(key),
            key.len()
        )));
    }
    Ok(())
}

/// Quotes a key or pattern for an error message, cutting very long ones.
pub(crate) fn shorten(text: &str) -> String {
    const SHOWN: usize = 64;
    if text.len() <= SHOWN {
        return format!("{text:?}");
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &text[..end])
}
