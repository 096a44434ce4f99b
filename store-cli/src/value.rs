//! How values are shown and kept as text: UTF-8 as it is, anything else as base64 with a
//! marker. One encoding for the table output, the JSON output and snapshots.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The marker in front of base64 in the human table output.
///
/// ```
/// assert_eq!(store_cli::value::BASE64_MARKER, "base64:");
/// ```
pub const BASE64_MARKER: &str = "base64:";

/// A value in JSON: `{"value": "text"}` when the bytes are UTF-8, `{"value_base64": "..."}`
/// otherwise (exactly one of the two is set). Used in `--output json` and in snapshot lines.
///
/// ```
/// use store_cli::value::JsonValue;
/// let text = JsonValue::from_bytes(b"alice");
/// assert_eq!(serde_json::to_string(&text).unwrap(), r#"{"value":"alice"}"#);
/// let binary = JsonValue::from_bytes(&[0xff, 0x00]);
/// assert_eq!(serde_json::to_string(&binary).unwrap(), r#"{"value_base64":"/wA="}"#);
/// assert_eq!(&binary.to_bytes().unwrap()[..], &[0xff, 0x00]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonValue {
    /// The value, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in standard base64 (with padding), when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

impl JsonValue {
    /// The JSON form of `bytes`.
    ///
    /// ```
    /// assert!(store_cli::value::JsonValue::from_bytes(b"x").value.is_some());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => JsonValue {
                value: Some(text.to_owned()),
                value_base64: None,
            },
            Err(_) => JsonValue {
                value: None,
                value_base64: Some(STANDARD.encode(bytes)),
            },
        }
    }

    /// The bytes back; an error says what is wrong (both or neither field, bad base64).
    ///
    /// ```
    /// use store_cli::value::JsonValue;
    /// assert!(JsonValue::default().to_bytes().is_err());
    /// ```
    pub fn to_bytes(&self) -> Result<Bytes, String> {
        match (&self.value, &self.value_base64) {
            (Some(text), None) => Ok(Bytes::copy_from_slice(text.as_bytes())),
            (None, Some(encoded)) => decode_base64(encoded).map(Bytes::from),
            (Some(_), Some(_)) => Err("both \"value\" and \"value_base64\" are set".into()),
            (None, None) => Err("neither \"value\" nor \"value_base64\" is set".into()),
        }
    }
}

/// Decodes standard base64 (with padding), saying what is wrong.
///
/// ```
/// assert_eq!(store_cli::value::decode_base64("aGk=").unwrap(), b"hi");
/// assert!(store_cli::value::decode_base64("!!").is_err());
/// ```
pub fn decode_base64(encoded: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(encoded)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Encodes bytes as standard base64 (with padding).
///
/// ```
/// assert_eq!(store_cli::value::encode_base64(b"hi"), "aGk=");
/// ```
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A value for the human table: UTF-8 text as it is; text that would be ambiguous or break
/// the table (control characters, a leading `"` or the base64 marker) quoted with escapes;
/// anything else `base64:` and the base64.
///
/// ```
/// use store_cli::value::display;
/// assert_eq!(display(b"alice"), "alice");
/// assert_eq!(display(b"two\nlines"), "\"two\\nlines\"");
/// assert_eq!(display(&[0xc1, 0x47]), "base64:wUc=");
/// assert_eq!(display(b"base64:wUc="), "\"base64:wUc=\"");
/// ```
pub fn display(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if !text.starts_with(BASE64_MARKER)
                && !text.starts_with('"')
                && !text.chars().any(char::is_control) =>
        {
            text.to_owned()
        }
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("{BASE64_MARKER}{}", STANDARD.encode(bytes)),
    }
}
