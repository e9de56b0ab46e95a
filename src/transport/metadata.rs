//! Request metadata a caller adds to a send (gRPC custom metadata: an authorization header, a
//! request id, W3C `traceparent`), checked once as gRPC's HTTP/2 protocol says and sent on every
//! attempt of the send (retries, fail-over, hedges).
//!
//! Keys are lower-case ASCII: digits, `a`-`z`, `_`, `-`, `.`. A key ending in `-bin` takes any bytes
//! (sent base64-encoded, without padding, as gRPC does); other values are printable ASCII and space.
//! Names the protocol or the library sets are refused: `grpc-*`, `te`, `content-type`, `user-agent`,
//! HTTP/2's connection headers (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
//! `upgrade`, `host`), and `endpoint` on a send that sets its endpoint.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::BinaryMetadataValue;

use crate::error::{Error, Result};

/// Names no caller may set.
const RESERVED: [&str; 9] = [
    "te",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Checked request metadata, cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    headers: Arc<HeaderMap>,
}

impl Metadata {
    /// No metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metadata from `(key, value)` entries (a key may repeat), checked.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Result<Self> {
        let mut metadata = Metadata::new();
        for (key, value) in entries {
            metadata.append(key, value)?;
        }
        Ok(metadata)
    }

    /// Adds one entry (after any with the same key).
    pub fn append(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let (name, value) = checked(key, value)?;
        Arc::make_mut(&mut self.headers).append(name, value);
        Ok(())
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether an entry has this (lower-case) key.
    pub fn contains_key(&self, key: &str) -> bool {
        self.headers.contains_key(key)
    }

    /// The entries as they go on the wire (`-bin` values base64-encoded).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

fn invalid(key: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("request metadata {key:?}: {reason}"))
}

fn checked(key: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue)> {
    if key.is_empty() {
        return Err(invalid(key, "empty key"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !matches!(c, '0'..='9' | 'a'..='z' | '_' | '-' | '.'))
    {
        let why = if c.is_ascii_uppercase() {
            "keys must be lower-case".to_owned()
        } else {
            format!("{c:?} is not allowed in a key (digits, a-z, '_', '-', '.')")
        };
        return Err(invalid(key, why));
    }
    if key.starts_with("grpc-") {
        return Err(invalid(key, "grpc-* names are reserved for gRPC"));
    }
    if RESERVED.contains(&key) {
        return Err(invalid(
            key,
            "the name is reserved (set by gRPC, HTTP/2 or the library)",
        ));
    }
    let name = HeaderName::from_bytes(key.as_bytes()).map_err(|e| invalid(key, e))?;
    let value = if key.ends_with("-bin") {
        let encoded = BinaryMetadataValue::from_bytes(value);
        HeaderValue::from_bytes(encoded.as_encoded_bytes()).map_err(|e| invalid(key, e))?
    } else {
        if let Some(at) = value.iter().position(|b| !(0x20..=0x7e).contains(b)) {
            return Err(invalid(
                key,
                format!(
                    "byte {at} of the value is 0x{:02x}: values are printable ASCII and space (binary values need a key ending in -bin)",
                    value[at]
                ),
            ));
        }
        HeaderValue::from_bytes(value).map_err(|e| invalid(key, e))?
    };
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_reserved_names() {
        let mut m = Metadata::new();
        m.append("authorization", b"Bearer abc").unwrap();
        m.append(
            "traceparent",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .unwrap();
        m.append("x-id", b"1").unwrap();
        m.append("x-id", b"2").unwrap();
        m.append("trace-bin", &[0, 1, 2, 0xff]).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m.headers().get_all("x-id").iter().count(), 2);
        assert_eq!(m.headers()["trace-bin"], "AAEC/w");
        for bad in [
            "",
            "Upper",
            "sp ace",
            "grpc-timeout",
            "te",
            "content-type",
            "connection",
            ":path",
            "é",
        ] {
            let e = Metadata::new().append(bad, b"v").unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
        let e = Metadata::new().append("x", b"a\nb").unwrap_err();
        assert!(e.to_string().contains("0x0a"), "{e}");
        assert!(Metadata::new().append("x", &[0x80]).is_err());
        assert!(Metadata::new().append("x-bin", b"\n\x80 any bytes").is_ok());
        assert!(Metadata::new().append("x", b"").is_ok());
    }
}
