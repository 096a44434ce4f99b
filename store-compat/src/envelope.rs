//! The metadata envelope: how a facade [`Record`](crate::Record)'s value and metadata share
//! one stored value.
//!
//! The versioned contract stores bytes only, so a record with metadata is stored as:
//!
//! ```text
//! offset     size  field
//! 0          4     magic: C1 47 4D 45 ("\xC1GME"; 0xC1 never occurs in UTF-8 text)
//! 4          1     format version: 01
//! 5          4     N: length of the metadata, u32 big-endian
//! 9          N     metadata: a JSON object (UTF-8), keys sorted
//! 9+N        M     the value, verbatim
//! 9+N+M      4     CRC-32 (IEEE, as crc32fast computes it) of bytes 0 .. 9+N+M, u32 big-endian
//! ```
//!
//! Reading ([`decode`]) treats stored bytes as an envelope only when *all* of these hold:
//! the magic matches, the version byte is a known format version, the length fits, the
//! checksum matches, and the metadata is a JSON object. Anything else is an ordinary value
//! and reads back verbatim with empty metadata, so values written through the versioned API
//! are readable through the facade, and an ordinary value is only taken for an envelope if
//! it forges magic, version and checksum together.
//!
//! Writing ([`encode`]) stores a record without metadata as its raw value (no overhead, and
//! readable as-is through the versioned API), except when that raw value would itself be
//! taken for an envelope: then it is wrapped, so that it too reads back exactly.
//!
//! JSON numbers keep their kind: an integer (`i64` or `u64`) reads back as the same integer,
//! a float as the same float (serde_json prints floats so that they parse back exactly).
//!
//! ```
//! use std::collections::HashMap;
//! use serde_json::json;
//! use store_compat::envelope;
//!
//! let metadata = HashMap::from([("count".to_owned(), json!(3))]);
//! let stored = envelope::encode(&metadata, "payload".into()).unwrap();
//! assert!(envelope::is_envelope(&stored));
//! let (read_metadata, value) = envelope::decode(stored);
//! assert_eq!(read_metadata, metadata);
//! assert_eq!(&value[..], b"payload");
//!
//! // Plain bytes are not envelopes and come back as they are.
//! let (read_metadata, value) = envelope::decode("plain".into());
//! assert!(read_metadata.is_empty());
//! assert_eq!(&value[..], b"plain");
//! ```

use std::collections::{BTreeMap, HashMap};

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use store_core::{Error, Result};

/// The four bytes every envelope starts with: `0xC1` (never valid in UTF-8, so no text or
/// JSON value starts with it) then `GME`.
///
/// ```
/// assert_eq!(&store_compat::envelope::MAGIC, b"\xC1GME");
/// ```
pub const MAGIC: [u8; 4] = [0xC1, b'G', b'M', b'E'];

/// The format version written by [`encode`] and the only one [`decode`] accepts.
///
/// ```
/// assert_eq!(store_compat::envelope::FORMAT_VERSION, 1);
/// ```
pub const FORMAT_VERSION: u8 = 1;

/// Bytes before the metadata: magic, version, metadata length.
const HEADER_LEN: usize = MAGIC.len() + 1 + 4;
/// Bytes of the trailing checksum.
const CRC_LEN: usize = 4;

/// Bytes an envelope adds to the value besides the metadata JSON itself.
///
/// ```
/// use std::collections::HashMap;
/// use store_compat::envelope::{wrap, OVERHEAD};
/// assert_eq!(wrap(&HashMap::new(), b"v").unwrap().len(), OVERHEAD + "{}".len() + 1);
/// ```
pub const OVERHEAD: usize = HEADER_LEN + CRC_LEN;

/// Encodes a value and its metadata for storage: the raw value when there is no metadata
/// (unless the raw value would be mistaken for an envelope), an envelope otherwise.
///
/// Fails with [`Error::InvalidValue`] only when the metadata JSON exceeds 4 GiB.
///
/// ```
/// use std::collections::HashMap;
/// use store_compat::envelope::{encode, is_envelope};
/// let raw = encode(&HashMap::new(), "v".into()).unwrap();
/// assert_eq!(&raw[..], b"v");
/// assert!(!is_envelope(&raw));
/// ```
pub fn encode(metadata: &HashMap<String, Value>, value: Bytes) -> Result<Bytes> {
    if metadata.is_empty() && !is_envelope(&value) {
        return Ok(value);
    }
    wrap(metadata, &value)
}

/// Always encodes an envelope, even for empty metadata.
///
/// ```
/// use std::collections::HashMap;
/// use store_compat::envelope::{decode, wrap};
/// let stored = wrap(&HashMap::new(), b"v").unwrap();
/// let (metadata, value) = decode(stored);
/// assert!(metadata.is_empty());
/// assert_eq!(&value[..], b"v");
/// ```
pub fn wrap(metadata: &HashMap<String, Value>, value: &[u8]) -> Result<Bytes> {
    // Sorted keys make the stored bytes a function of the record alone.
    let sorted: BTreeMap<&String, &Value> = metadata.iter().collect();
    let json = serde_json::to_vec(&sorted)
        .map_err(|e| Error::InvalidValue(format!("metadata cannot be encoded as JSON: {e}")))?;
    let json_len = u32::try_from(json.len()).map_err(|_| {
        Error::InvalidValue(format!(
            "metadata is {} bytes of JSON; at most {} are accepted",
            json.len(),
            u32::MAX
        ))
    })?;
    let mut out = BytesMut::with_capacity(OVERHEAD + json.len() + value.len());
    out.put_slice(&MAGIC);
    out.put_u8(FORMAT_VERSION);
    out.put_u32(json_len);
    out.put_slice(&json);
    out.put_slice(value);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    Ok(out.freeze())
}

/// Splits stored bytes into metadata and value. Never fails: bytes that are not an envelope
/// (see the module docs) are an ordinary value with empty metadata. The value shares the
/// stored buffer (no copy).
///
/// ```
/// use store_compat::envelope::{decode, MAGIC};
/// // Starts with the magic, but the checksum is wrong: an ordinary value.
/// let mut bytes = MAGIC.to_vec();
/// bytes.extend_from_slice(&[1, 0, 0, 0, 2, b'{', b'}', 0, 0, 0, 0]);
/// let (metadata, value) = decode(bytes.clone().into());
/// assert!(metadata.is_empty());
/// assert_eq!(&value[..], &bytes[..]);
/// ```
pub fn decode(stored: Bytes) -> (HashMap<String, Value>, Bytes) {
    match parse(&stored) {
        Some((metadata, range)) => (metadata, stored.slice(range)),
        None => (HashMap::new(), stored),
    }
}

/// Whether [`decode`] would take `bytes` for an envelope.
///
/// ```
/// use std::collections::HashMap;
/// use store_compat::envelope::{is_envelope, wrap};
/// assert!(is_envelope(&wrap(&HashMap::new(), b"v").unwrap()));
/// assert!(!is_envelope(b"{\"json\": true}"));
/// ```
pub fn is_envelope(bytes: &[u8]) -> bool {
    parse(bytes).is_some()
}

/// The metadata and the value's byte range, when `bytes` is an envelope.
fn parse(bytes: &[u8]) -> Option<(HashMap<String, Value>, std::ops::Range<usize>)> {
    if bytes.len() < OVERHEAD || bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    if bytes[MAGIC.len()] != FORMAT_VERSION {
        return None;
    }
    let len_at = MAGIC.len() + 1;
    let json_len = u32::from_be_bytes(bytes[len_at..HEADER_LEN].try_into().ok()?) as usize;
    let body_end = bytes.len() - CRC_LEN;
    let value_start = HEADER_LEN.checked_add(json_len)?;
    if value_start > body_end {
        return None;
    }
    let stored_crc = u32::from_be_bytes(bytes[body_end..].try_into().ok()?);
    if crc32fast::hash(&bytes[..body_end]) != stored_crc {
        return None;
    }
    let metadata =
        serde_json::from_slice::<HashMap<String, Value>>(&bytes[HEADER_LEN..value_start]).ok()?;
    Some((metadata, value_start..body_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_is_as_documented() {
        let metadata = HashMap::from([("b".to_owned(), json!(2)), ("a".to_owned(), json!(1))]);
        let stored = wrap(&metadata, b"xyz").unwrap();
        let json = br#"{"a":1,"b":2}"#;
        assert_eq!(&stored[..4], b"\xC1GME");
        assert_eq!(stored[4], 1);
        assert_eq!(&stored[5..9], &(json.len() as u32).to_be_bytes());
        assert_eq!(&stored[9..9 + json.len()], json);
        assert_eq!(&stored[9 + json.len()..stored.len() - 4], b"xyz");
        let crc = crc32fast::hash(&stored[..stored.len() - 4]);
        assert_eq!(&stored[stored.len() - 4..], &crc.to_be_bytes());
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let metadata = HashMap::from([("k".to_owned(), json!("v"))]);
        let stored = wrap(&metadata, b"value").unwrap().to_vec();
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x01;
            let (read_metadata, value) = decode(bad.clone().into());
            assert!(read_metadata.is_empty(), "byte {i}");
            assert_eq!(&value[..], &bad[..], "byte {i}");
        }
    }

    #[test]
    fn short_and_truncated_inputs_are_plain_values() {
        let stored = wrap(&HashMap::new(), b"").unwrap();
        for end in 0..stored.len() {
            assert!(!is_envelope(&stored[..end]), "prefix of {end} bytes");
        }
        assert!(is_envelope(&stored));
    }

    #[test]
    fn huge_declared_length_is_not_an_envelope() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        assert!(!is_envelope(&bytes));
    }

    #[test]
    fn raw_value_that_forges_an_envelope_is_wrapped() {
        let forged = wrap(&HashMap::from([("x".to_owned(), json!(1))]), b"v").unwrap();
        let stored = encode(&HashMap::new(), forged.clone()).unwrap();
        assert_ne!(stored, forged);
        let (metadata, value) = decode(stored);
        assert!(metadata.is_empty());
        assert_eq!(value, forged);
    }
}
