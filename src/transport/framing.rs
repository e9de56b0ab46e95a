//! gRPC framing of one unary call: the request body (the 5-byte message prefix, then the payload's
//! chunks, a large payload handed over without a copy), the response message gathered from DATA
//! frames (a message within one frame is a slice of it), `grpc-timeout`, and the HTTP status of an
//! answer without a gRPC status mapped as gRPC does.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::HeaderValue;
use tonic::{Code, Status};

use crate::request::Payload;

/// A request smaller than this is copied into one chunk with its prefix (one DATA frame); of a larger
/// one, only the first `COPY_BELOW` bytes are copied behind the prefix (a first chunk of one full
/// frame: a separate 5-byte frame first costs a round trip's worth of latency, measured), the rest
/// is handed over as it is.
const COPY_BELOW: usize = 16 * 1024;

/// The gRPC prefix of a message: not compressed, then its length (big-endian).
pub(crate) const PREFIX_LEN: usize = 5;

/// A gathering buffer is reserved at once up to this size; a larger message grows it as its bytes
/// arrive, so that a peer that declares a huge message and sends a few bytes costs no more memory
/// than what it sent.
const RESERVE_AT_MOST: usize = 16 * 1024 * 1024;

/// The message of a unary response, taken from the DATA frames as they come: a message within one
/// frame is a slice of it; one spread over frames is gathered once into a buffer of its size. A
/// second message is a protocol violation, and so is a stream that ends inside the message.
#[derive(Default)]
pub(crate) struct ResponseMessage {
    partial: BytesMut,
    done: Option<Bytes>,
    /// The response's `grpc-encoding`: a message with the compressed flag is decoded with it.
    encoding: Option<&'static str>,
    /// The message had the compressed flag.
    compressed: bool,
}

impl ResponseMessage {
    /// A message of a response whose `grpc-encoding` is `encoding`.
    pub(crate) fn with_encoding(encoding: Option<&'static str>) -> Self {
        ResponseMessage {
            encoding,
            ..Default::default()
        }
    }

    fn len_of(&mut self, buf: &[u8], max_receive: usize) -> Result<Option<usize>, Status> {
        let len = message_len(buf, max_receive, self.encoding)?;
        if len.is_some() {
            self.compressed = buf[0] == 1;
        }
        Ok(len)
    }

    /// Adds the bytes of a DATA frame.
    pub(crate) fn push(&mut self, mut data: Bytes, max_receive: usize) -> Result<(), Status> {
        if self.done.is_some() {
            if data.is_empty() {
                return Ok(());
            }
            return Err(Status::internal(
                "protocol error: the server sent more than one message in the response of a unary call",
            ));
        }
        if self.partial.is_empty() {
            if let Some(len) = self.len_of(&data, max_receive)? {
                if data.len() >= PREFIX_LEN + len {
                    self.done = Some(data.slice(PREFIX_LEN..PREFIX_LEN + len));
                    data.advance(PREFIX_LEN + len);
                    return self.push(data, max_receive);
                }
                self.partial.reserve((PREFIX_LEN + len).min(RESERVE_AT_MOST));
            }
        }
        while data.has_remaining() {
            if self.done.is_some() {
                return self.push(data, max_receive);
            }
            let chunk = data.chunk();
            let partial = std::mem::take(&mut self.partial);
            let known = self.len_of(&partial, max_receive);
            self.partial = partial;
            let want = match known? {
                Some(len) => PREFIX_LEN + len - self.partial.len(),
                None => PREFIX_LEN - self.partial.len(),
            };
            let take = want.min(chunk.len());
            self.partial.put_slice(&chunk[..take]);
            data.advance(take);
            if let Some(len) = message_len(&self.partial, max_receive, self.encoding)? {
                if self.partial.len() == PREFIX_LEN + len {
                    let mut whole = std::mem::take(&mut self.partial).freeze();
                    whole.advance(PREFIX_LEN);
                    self.done = Some(whole);
                }
            }
        }
        Ok(())
    }

    /// The stream ended: the message (decoded when it was compressed), `None` when there was none,
    /// or the error of a stream that ended inside it.
    pub(crate) fn finish(self, max_receive: usize) -> Result<Option<Bytes>, Status> {
        if let Some(done) = self.done {
            return match (self.compressed, self.encoding) {
                (true, Some(encoding)) => super::compression::decompress(encoding, &done, max_receive).map(Some),
                _ => Ok(Some(done)),
            };
        }
        if self.partial.is_empty() {
            return Ok(None);
        }
        let declared = message_len(&self.partial, usize::MAX, self.encoding)?.map_or_else(
            || format!("{} of its 5 prefix bytes", self.partial.len()),
            |len| {
                format!(
                    "{} of the {len} bytes its prefix declared",
                    self.partial.len() - PREFIX_LEN
                )
            },
        );
        Err(Status::internal(format!(
            "protocol error: the response was truncated: the stream ended after {declared}"
        )))
    }
}

/// The length of the message whose prefix starts `buf`, once the prefix is complete.
fn message_len(buf: &[u8], max_receive: usize, encoding: Option<&str>) -> Result<Option<usize>, Status> {
    if buf.len() < PREFIX_LEN {
        return Ok(None);
    }
    match (buf[0], encoding) {
        (0, _) | (1, Some(_)) => {}
        (1, None) => {
            return Err(Status::internal(
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ))
        }
        (flag, _) => {
            return Err(Status::internal(format!(
                "protocol error: invalid compressed-flag {flag} in a message prefix"
            )))
        }
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max_receive {
        return Err(Status::out_of_range(format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: {max_receive} bytes"
        )));
    }
    Ok(Some(len))
}

/// gRPC's mapping of an HTTP status (grpc's `doc/http-grpc-status-mapping.md`), for an answer that
/// is not a gRPC one.
fn code_of_http(status: http::StatusCode) -> Code {
    use http::StatusCode as S;
    match status {
        S::BAD_REQUEST => Code::Internal,
        S::UNAUTHORIZED => Code::Unauthenticated,
        S::FORBIDDEN => Code::PermissionDenied,
        S::NOT_FOUND => Code::Unimplemented,
        S::TOO_MANY_REQUESTS | S::BAD_GATEWAY | S::SERVICE_UNAVAILABLE | S::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Checks the head of a response before its body is read, as gRPC clients do: an HTTP status other
/// than 200 is mapped to a gRPC code (503 is `UNAVAILABLE`, so it is retried and failed over), and a
/// `content-type` that is not `application/grpc[+...|;...]` is `UNKNOWN` naming it.
pub(crate) fn check_response_head(status: http::StatusCode, headers: &http::HeaderMap) -> Result<(), Status> {
    let content_type = headers.get(http::header::CONTENT_TYPE).map(|v| v.as_bytes());
    let grpc = content_type.is_some_and(|t| {
        t.strip_prefix(b"application/grpc")
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'+' || rest[0] == b';')
    });
    if status == http::StatusCode::OK && grpc {
        return Ok(());
    }
    let shown = content_type.map_or_else(
        || "no content-type".to_owned(),
        |t| format!("content-type {:?}", String::from_utf8_lossy(t)),
    );
    if status != http::StatusCode::OK {
        return Err(Status::new(
            code_of_http(status),
            format!("HTTP status {status} instead of a gRPC response ({shown})"),
        ));
    }
    if !grpc {
        return Err(Status::unknown(format!(
            "HTTP status 200 but {shown}: not a gRPC response (application/grpc)"
        )));
    }
    Ok(())
}

/// No `grpc-status` at the end of a response whose head was a gRPC one.
pub(crate) fn missing_status() -> Status {
    Status::unknown("protocol error: missing grpc-status trailer, stream was terminated without a final status")
}

/// gRPC's reading of an HTTP/2 RST_STREAM from the server (grpc's `doc/PROTOCOL-HTTP2.md`, "Errors"):
/// only REFUSED_STREAM says the request was not processed (`UNAVAILABLE`, so it may be retried).
pub(crate) fn status_of_reset(reason: h2::Reason) -> Status {
    use h2::Reason as R;
    let code = match reason {
        R::REFUSED_STREAM => Code::Unavailable,
        R::CANCEL => Code::Cancelled,
        R::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        R::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Internal,
    };
    Status::new(code, format!("the server reset the stream (RST_STREAM {reason:?})"))
}

/// `grpc-timeout`: at most 8 digits, in the finest unit that fits.
pub(crate) fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let (value, unit) = [
        (nanos, 'n'),
        (nanos / 1_000, 'u'),
        (nanos / 1_000_000, 'm'),
        (nanos / 1_000_000_000, 'S'),
        (nanos / 60_000_000_000, 'M'),
        (nanos / 3_600_000_000_000, 'H'),
    ]
    .into_iter()
    .find(|(v, _)| *v <= MAX)
    .unwrap_or((MAX, 'H'));
    HeaderValue::from_str(&format!("{value}{unit}")).expect("digits and a unit are a valid header value")
}

/// The request body: the message's prefix and bytes, as chunks (a small message in one, kept
/// without a queue).
pub(crate) struct RequestBody {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl RequestBody {
    pub(crate) fn new(payload: &Payload, len: usize) -> Self {
        let prefix = {
            let mut p = [0u8; PREFIX_LEN];
            p[0] = u8::from(payload.encoding().is_some());
            p[1..].copy_from_slice(&(len as u32).to_be_bytes());
            p
        };
        if len < COPY_BELOW {
            let mut one = BytesMut::with_capacity(PREFIX_LEN + len);
            one.put_slice(&prefix);
            payload.write_to(&mut one);
            return RequestBody {
                first: Some(one.freeze()),
                rest: VecDeque::new(),
            };
        }
        {
            let mut chunks = VecDeque::with_capacity(2);
            payload.push_chunks(&mut chunks);
            let mut first = BytesMut::with_capacity(COPY_BELOW);
            first.put_slice(&prefix);
            while first.len() < COPY_BELOW {
                let Some(chunk) = chunks.front_mut() else { break };
                let take = (COPY_BELOW - first.len()).min(chunk.len());
                first.put_slice(&chunk[..take]);
                chunk.advance(take);
                if chunk.is_empty() {
                    chunks.pop_front();
                }
            }
            RequestBody {
                first: Some(first.freeze()),
                rest: chunks,
            }
        }
    }

    /// The chunks, in order (at least one: the prefix).
    pub(crate) fn into_chunks(self) -> impl Iterator<Item = Bytes> {
        self.first.into_iter().chain(self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fit_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_millis(50)), "50000000n");
        assert_eq!(grpc_timeout(Duration::from_millis(500)), "500000u");
        assert_eq!(grpc_timeout(Duration::from_secs(100)), "100000m");
        assert_eq!(grpc_timeout(Duration::from_secs(365 * 24 * 3600)), "31536000S");
        assert_eq!(grpc_timeout(Duration::from_secs(10 * 365 * 24 * 3600)), "5256000M");
    }

    #[test]
    fn messages_are_taken_whole_or_gathered() {
        let framed = |body: &[u8]| {
            let mut v = vec![0, 0, 0, 0, body.len() as u8];
            v.extend_from_slice(body);
            Bytes::from(v)
        };
        // In one frame: a slice of it.
        let mut m = ResponseMessage::default();
        let frame = framed(b"hello");
        m.push(frame.clone(), 100).unwrap();
        assert_eq!(m.done.as_deref(), Some(&b"hello"[..]));
        // Over three frames, split inside the prefix.
        let whole = framed(b"spread out");
        let mut m = ResponseMessage::default();
        for part in [whole.slice(0..3), whole.slice(3..9), whole.slice(9..)] {
            m.push(part, 100).unwrap();
        }
        assert_eq!(m.done.as_deref(), Some(&b"spread out"[..]));
        // Too large, compressed.
        assert_eq!(
            ResponseMessage::default().push(framed(b"xx"), 1).unwrap_err().code(),
            Code::OutOfRange
        );
        let mut compressed = framed(b"x").to_vec();
        compressed[0] = 1;
        assert_eq!(
            ResponseMessage::default()
                .push(compressed.into(), 100)
                .unwrap_err()
                .code(),
            Code::Internal
        );
    }

    #[test]
    fn a_second_message_and_a_truncated_one_are_protocol_errors() {
        let framed = |body: &[u8]| {
            let mut v = vec![0, 0, 0, 0, body.len() as u8];
            v.extend_from_slice(body);
            v
        };
        // Two messages in one frame, or in two.
        let mut two = framed(b"one");
        two.extend(framed(b"two"));
        let e = ResponseMessage::default().push(two.into(), 100).unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(e.message().contains("more than one message"), "{}", e.message());
        let mut m = ResponseMessage::default();
        m.push(framed(b"one").into(), 100).unwrap();
        assert!(m.push(framed(b"two").into(), 100).is_err());
        m.push(Bytes::new(), 100).unwrap();
        // A 4 GiB prefix and 10 bytes: truncated (and no 4 GiB buffer).
        let mut huge = vec![0, 0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(b"0123456789");
        let mut m = ResponseMessage::default();
        m.push(huge.into(), usize::MAX).unwrap();
        assert!(m.partial.capacity() <= RESERVE_AT_MOST + 64);
        let e = m.finish(usize::MAX).unwrap_err();
        assert_eq!(e.code(), Code::Internal);
        assert!(
            e.message().contains("truncated") && e.message().contains("10 of the 4294967295 bytes"),
            "{}",
            e.message()
        );
        // Inside the prefix; nothing at all.
        let mut m = ResponseMessage::default();
        m.push(Bytes::from_static(&[0, 0]), 100).unwrap();
        assert!(m
            .finish(usize::MAX)
            .unwrap_err()
            .message()
            .contains("2 of its 5 prefix bytes"));
        assert_eq!(ResponseMessage::default().finish(usize::MAX).unwrap(), None);
    }

    #[test]
    fn bodies_carry_the_prefix_and_the_bytes() {
        use crate::request::Request;
        for size in [10usize, COPY_BELOW + 10] {
            let (payload, _) = Payload::new(&[Request::data(vec![7u8; size])]).unwrap();
            let body = RequestBody::new(&payload, payload.encoded_len());
            let chunks: Vec<Bytes> = body.into_chunks().collect();
            let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(
                &all[..PREFIX_LEN],
                &[0, (size >> 24) as u8, (size >> 16) as u8, (size >> 8) as u8, size as u8]
            );
            assert!(all[PREFIX_LEN..].iter().all(|&b| b == 7) && all.len() == size + PREFIX_LEN);
            assert_eq!(chunks.len(), if size < COPY_BELOW { 1 } else { 2 });
            assert!(chunks[0].len() <= COPY_BELOW.max(size + PREFIX_LEN));
        }
    }
}
