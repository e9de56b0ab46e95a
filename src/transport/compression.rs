//! Compressed messages (gRPC's `grpc-encoding`): a request payload compressed once per send (its
//! attempts share it), and response messages decoded whatever their encoding (gzip, deflate,
//! identity), never into more bytes than the message limit allows.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use tonic::Status;

use crate::error::{Error, Result};
use crate::policy::Compression;
use crate::request::Payload;

/// The encodings a response may use, for `grpc-accept-encoding`.
pub(crate) const ACCEPT: &str = "gzip, deflate, identity";

/// `payload` compressed with `compression` (the payload itself when it is `None`).
pub fn compress(payload: Payload, compression: Compression) -> Result<Payload> {
    let Some(encoding) = compression.encoding() else {
        return Ok(payload);
    };
    // The payload's own chunks go through the encoder: no uncompressed copy is made.
    let mut chunks = std::collections::VecDeque::new();
    payload.push_chunks(&mut chunks);
    let out = BytesMut::with_capacity(payload.encoded_len() / 2 + 64).writer();
    let fail = |e: std::io::Error| Error::InvalidRequest(format!("{encoding} compression failed: {e}"));
    let out = match compression {
        Compression::Gzip => {
            let mut e = GzEncoder::new(out, flate2::Compression::fast());
            for chunk in &chunks {
                e.write_all(chunk).map_err(fail)?;
            }
            e.finish().map_err(fail)?
        }
        _ => {
            let mut e = ZlibEncoder::new(out, flate2::Compression::fast());
            for chunk in &chunks {
                e.write_all(chunk).map_err(fail)?;
            }
            e.finish().map_err(fail)?
        }
    };
    Ok(Payload::compressed(encoding, out.into_inner().freeze()))
}

/// A response message compressed as `encoding`, decoded; at most `max` bytes.
pub(crate) fn decompress(encoding: &str, data: &[u8], max: usize) -> std::result::Result<Bytes, Status> {
    let mut out = Vec::with_capacity((data.len() * 4).min(max.min(64 << 20)));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let read = match encoding {
        "gzip" => GzDecoder::new(data).take(limit).read_to_end(&mut out),
        "deflate" => ZlibDecoder::new(data).take(limit).read_to_end(&mut out),
        other => {
            return Err(Status::internal(format!(
                "protocol error: a compressed message in an encoding this client does not know ({other:?})"
            )))
        }
    };
    read.map_err(|e| {
        Status::internal(format!(
            "protocol error: a {encoding} message that does not decode: {e}"
        ))
    })?;
    if out.len() > max {
        return Err(Status::out_of_range(format!(
            "Error, decompressed message length too large: more than the limit of {max} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

/// A response's `grpc-encoding`, checked to be one this client decodes.
pub(crate) fn response_encoding(headers: &http::HeaderMap) -> std::result::Result<Option<&'static str>, Status> {
    const GRPC_ENCODING: http::HeaderName = http::HeaderName::from_static("grpc-encoding");
    match headers.get(&GRPC_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => Ok(None),
        Some(b"gzip") => Ok(Some("gzip")),
        Some(b"deflate") => Ok(Some("deflate")),
        Some(other) => Err(Status::unimplemented(format!(
            "the response is compressed as {:?}, which this client does not decode (gzip, deflate)",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    #[test]
    fn round_trips_and_limits() {
        let text = "the same words again and again ".repeat(1000);
        for c in [Compression::Gzip, Compression::Deflate] {
            let (payload, _) = Payload::new(&[Request::data(text.clone().into_bytes())]).unwrap();
            let packed = compress(payload, c).unwrap();
            assert_eq!(packed.encoding(), c.encoding());
            assert!(
                packed.encoded_len() < text.len() / 10,
                "{c:?}: {}",
                packed.encoded_len()
            );
            let mut bytes = BytesMut::new();
            packed.write_to(&mut bytes);
            let back = decompress(c.encoding().unwrap(), &bytes, usize::MAX).unwrap();
            assert_eq!(back, text.as_bytes());
            assert_eq!(
                decompress(c.encoding().unwrap(), &bytes, 100).unwrap_err().code(),
                tonic::Code::OutOfRange
            );
        }
        assert!(decompress("gzip", b"not gzip", usize::MAX).is_err());
        assert!(decompress("br", b"x", usize::MAX).is_err());
        assert_eq!(Compression::from_name("Gzip"), Some(Compression::Gzip));
        assert_eq!(Compression::from_name("NoCompression"), Some(Compression::None));
        assert_eq!(Compression::from_name("Deflate"), Some(Compression::Deflate));
        assert_eq!(Compression::from_name("zstd"), None);
    }
}
