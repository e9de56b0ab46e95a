//! gRPC framing of one unary call: the request body (the 5-byte message prefix, then the payload's
//! chunks, a large payload handed over without a copy), the response message gathered from DATA
//! frames (a message within one frame is a slice of it), `grpc-timeout`, and the HTTP status of an
//! answer without a gRPC status mapped as gRPC does.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::HeaderValue;
use http_body::{Frame, SizeHint};
use tonic::{Code, Status};

use crate::request::Payload;

/// A request smaller than this is copied into one chunk with its prefix (one DATA frame); of a larger
/// one, only the first `COPY_BELOW` bytes are copied behind the prefix (a first chunk of one full
/// frame: a separate 5-byte frame first costs a round trip's worth of latency, measured), the rest
/// is handed over as it is.
const COPY_BELOW: usize = 16 * 1024;

/// The gRPC prefix of a message: not compressed, then its length (big-endian).
pub(crate) const PREFIX_LEN: usize = 5;

/// The first message of the response, taken from the DATA frames as they come: a message within one
/// frame is a slice of it; one spread over frames is gathered once into a buffer of its size.
#[derive(Default)]
pub(crate) struct ResponseMessage {
    partial: BytesMut,
    done: Option<Bytes>,
}

impl ResponseMessage {
    /// The message, once it is complete.
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        self.done.take()
    }

    pub(crate) fn push(&mut self, mut data: Bytes, max_receive: usize) -> Result<(), Status> {
        if self.done.is_some() {
            return Ok(()); // a unary call answers with one message; further ones are ignored
        }
        if self.partial.is_empty() {
            if let Some(len) = message_len(&data, max_receive)? {
                if data.len() >= PREFIX_LEN + len {
                    self.done = Some(data.slice(PREFIX_LEN..PREFIX_LEN + len));
                    return Ok(());
                }
                self.partial.reserve(PREFIX_LEN + len);
            }
        }
        while data.has_remaining() && self.done.is_none() {
            let chunk = data.chunk();
            let want = match message_len(&self.partial, max_receive)? {
                Some(len) => PREFIX_LEN + len - self.partial.len(),
                None => PREFIX_LEN - self.partial.len(),
            };
            let take = want.min(chunk.len());
            self.partial.put_slice(&chunk[..take]);
            data.advance(take);
            if let Some(len) = message_len(&self.partial, max_receive)? {
                if self.partial.len() == PREFIX_LEN + len {
                    let mut whole = std::mem::take(&mut self.partial).freeze();
                    whole.advance(PREFIX_LEN);
                    self.done = Some(whole);
                }
            }
        }
        Ok(())
    }
}

/// The length of the message whose prefix starts `buf`, once the prefix is complete.
fn message_len(buf: &[u8], max_receive: usize) -> Result<Option<usize>, Status> {
    if buf.len() < PREFIX_LEN {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(Status::internal(
            "protocol error: received message with compressed-flag but no grpc-encoding was specified",
        ));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max_receive {
        return Err(Status::out_of_range(format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: {max_receive} bytes"
        )));
    }
    Ok(Some(len))
}

/// No `grpc-status` anywhere: the HTTP status says what happened (gRPC's HTTP-to-gRPC mapping, as
/// tonic applies it).
pub(crate) fn status_from_http(status: http::StatusCode) -> Status {
    use http::StatusCode as S;
    let code = match status {
        S::OK => {
            return Status::unknown(
                "protocol error: missing grpc-status trailer, stream was terminated without a final status",
            )
        }
        S::BAD_REQUEST => Code::Internal,
        S::UNAUTHORIZED => Code::Unauthenticated,
        S::FORBIDDEN => Code::PermissionDenied,
        S::NOT_FOUND => Code::Unimplemented,
        S::TOO_MANY_REQUESTS | S::BAD_GATEWAY | S::SERVICE_UNAVAILABLE | S::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        code,
        format!(
            "grpc-status header missing, mapped from HTTP status code {}",
            status.as_u16()
        ),
    )
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

/// The request body: the message's prefix and bytes, as chunks.
pub(crate) struct RequestBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl RequestBody {
    pub(crate) fn new(payload: &Payload, len: usize) -> Self {
        let prefix = {
            let mut p = [0u8; PREFIX_LEN];
            p[1..].copy_from_slice(&(len as u32).to_be_bytes());
            p
        };
        let chunks = if len < COPY_BELOW {
            let mut one = BytesMut::with_capacity(PREFIX_LEN + len);
            one.put_slice(&prefix);
            payload.write_to(&mut one);
            VecDeque::from([one.freeze()])
        } else {
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
            chunks.push_front(first.freeze());
            chunks
        };
        RequestBody {
            chunks,
            remaining: (PREFIX_LEN + len) as u64,
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|chunk| {
            self.remaining -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

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
    fn bodies_carry_the_prefix_and_the_bytes() {
        use crate::request::Request;
        for size in [10usize, COPY_BELOW + 10] {
            let (payload, _) = Payload::new(&[Request::data(vec![7u8; size])]).unwrap();
            let body = RequestBody::new(&payload, payload.encoded_len());
            assert_eq!(body.size_hint().exact(), Some((size + PREFIX_LEN) as u64));
            let all: Vec<u8> = body.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(
                &all[..PREFIX_LEN],
                &[0, (size >> 24) as u8, (size >> 16) as u8, (size >> 8) as u8, size as u8]
            );
            assert!(all[PREFIX_LEN..].iter().all(|&b| b == 7) && all.len() == size + PREFIX_LEN);
            assert_eq!(body.chunks.len(), if size < COPY_BELOW { 1 } else { 2 });
            assert!(body.chunks[0].len() <= COPY_BELOW.max(size + PREFIX_LEN));
        }
    }
}
