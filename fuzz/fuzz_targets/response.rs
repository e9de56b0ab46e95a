//! Response parsing as a server could answer a unary call: any HTTP status, headers, DATA frames and
//! trailers. No panic, no allocation beyond what was sent; and a response accepted as OK is exactly
//! one gRPC message with an OK status: HTTP 200, a gRPC content-type, the frames together are one
//! 5-byte prefix and the body it declares.
#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn header(map: &mut HeaderMap, raw: &[u8]) {
    let (name, value) = match raw.iter().position(|&b| b == b':') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &b""[..]),
    };
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        map.append(n, v);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]) % 600;
    let flags = data[2];
    let mut headers = HeaderMap::new();
    if flags & 1 != 0 {
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    }
    let mut frames = Vec::new();
    let mut trailers: Option<HeaderMap> = (flags & 2 != 0).then(|| {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t
    });
    let mut rest = &data[3..];
    while rest.len() >= 2 {
        let (kind, len) = (rest[0] % 3, usize::from(rest[1]));
        let body = &rest[2..(2 + len).min(rest.len())];
        match kind {
            0 => header(&mut headers, body),
            1 => frames.push(Bytes::copy_from_slice(body)),
            _ => header(trailers.get_or_insert_with(HeaderMap::new), body),
        }
        rest = &rest[(2 + len).min(rest.len())..];
    }
    let max_receive = if flags & 4 != 0 { 64 } else { usize::MAX };
    if let Ok((body, _trailers)) = jina_net::transport::parse_response(status, &headers, &frames, trailers, max_receive) {
        assert_eq!(status, 200);
        let all: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        assert!(all.len() >= 5 && all[0] == 0, "one uncompressed message");
        let len = u32::from_be_bytes([all[1], all[2], all[3], all[4]]) as usize;
        assert_eq!(all.len(), 5 + len, "exactly one message, nothing after it");
        assert_eq!(&all[5..], &body[..]);
        assert!(body.len() <= max_receive);
    }
});
