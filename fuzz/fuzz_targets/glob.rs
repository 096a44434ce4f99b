//! Parses arbitrary bytes as a `list_keys` pattern and matches arbitrary keys, comparing with
//! the reference matcher that the differential property test uses too.
//!
//! Input layout: the pattern, then keys, separated by 0xFF bytes (never valid UTF-8, so
//! they cannot occur inside the text); invalid UTF-8 elsewhere becomes U+FFFD.

#![no_main]

use libfuzzer_sys::fuzz_target;
use store_core::{Error, Pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING};

// One source for both users, included by path so it stays out of the crate's public API.
#[path = "../../store-core/tests/support/glob_reference.rs"]
mod reference;

/// Longer patterns are only compiled and matched (the reference is quadratic and recursive).
const REFERENCE_LIMIT: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let pattern = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let keys: Vec<String> = parts
        .take(16)
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();

    let ours = Pattern::new(&pattern);
    if let Ok(compiled) = &ours {
        for key in &keys {
            let (_, steps) = compiled.matches_with_steps(key);
            assert!(
                steps <= compiled.cost_per_byte() as u64 * (key.len() as u64 + 1),
                "{pattern:?} {key:?}: {steps} steps over the bound"
            );
        }
    }
    if let Err(error) = &ours {
        assert!(matches!(error, Error::InvalidPattern(_)), "{error:?}");
    }
    if pattern.len() > REFERENCE_LIMIT {
        return;
    }
    let expected = reference::parse(&pattern, MAX_PATTERN_LEN, MAX_PATTERN_NESTING);
    match (&ours, &expected) {
        (Ok(compiled), Some(parsed)) => {
            for key in &keys {
                assert_eq!(
                    compiled.matches(key),
                    reference::matches(parsed, key),
                    "pattern {pattern:?} key {key:?}"
                );
            }
        }
        (Err(_), None) => {}
        _ => panic!(
            "pattern {pattern:?}: ours {:?}, reference accepts: {}",
            ours.as_ref().err(),
            expected.is_some()
        ),
    }
});
