//! One unary gRPC call on a [`GrpcChannel`]'s HTTP/2 connection (a stream opened with h2), with the
//! request and response bytes passed through (see [`super::framing`]).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::{Code, Status};

use super::channel::GrpcChannel;
use super::compression::{response_encoding, ACCEPT};
use super::framing::{
    check_response_head, grpc_timeout, missing_status, status_of_reset, RequestBody, ResponseMessage,
};
use super::http2::Http2;
use super::metadata::Metadata;
use super::tls::TlsVerdict;
use crate::error::{Error, Result, TlsFailure};
use crate::request::{Method, Payload};

/// Per-send settings shared by every target and attempt of the send.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The `endpoint` metadata (data requests only).
    pub endpoint: Option<AsciiMetadataValue>,
    /// The time by which the whole send (retries included) must be done.
    pub deadline: Option<Instant>,
    /// Request metadata sent with every attempt.
    pub metadata: Option<Metadata>,
}

impl CallOptions {
    /// Options with an endpoint (checked to be a valid metadata value) and a timeout from now.
    pub fn new(endpoint: Option<&str>, timeout: Option<Duration>) -> Result<Self> {
        let endpoint = endpoint
            .map(|e| {
                AsciiMetadataValue::try_from(e)
                    .map_err(|_| Error::InvalidRequest(format!("endpoint {e:?} is not a valid gRPC metadata value")))
            })
            .transpose()?;
        Ok(CallOptions {
            endpoint,
            deadline: timeout.map(|t| Instant::now() + t),
            metadata: None,
        })
    }

    /// The options with request metadata (`None` or empty = none). Refused when it names
    /// `endpoint` while the options set one for a method that carries it.
    pub fn with_metadata(mut self, metadata: Option<&Metadata>, method: Method) -> Result<Self> {
        let Some(metadata) = metadata.filter(|m| !m.is_empty()) else {
            return Ok(self);
        };
        if self.endpoint.is_some() && method.carries_endpoint() && metadata.contains_key("endpoint") {
            return Err(Error::InvalidArgument(
                "request metadata \"endpoint\": the send sets its endpoint already".into(),
            ));
        }
        self.metadata = Some(metadata.clone());
        Ok(self)
    }
}

/// What one call sends besides the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub method: Method,
    /// The `endpoint` metadata (sent with data requests only).
    pub endpoint: Option<&'a AsciiMetadataValue>,
    /// Sent as `grpc-timeout` when given.
    pub timeout: Option<Duration>,
    /// Request metadata, sent as it is.
    pub metadata: Option<&'a Metadata>,
    /// Say which compressed responses this client decodes (`grpc-accept-encoding`): sent when the
    /// pool compresses requests.
    pub accept_compressed: bool,
    pub max_send: usize,
    pub max_receive: usize,
}

/// Performs the call: the response message and the trailing metadata, or the call's status. The
/// response is checked as gRPC clients do: its HTTP status and content-type before the body, one
/// message, a message not cut short, and a final `grpc-status`; a failure below gRPC (a reset stream,
/// a lost connection) is mapped as gRPC maps it.
pub(crate) async fn unary(
    channel: &GrpcChannel,
    payload: Payload,
    call: Call<'_>,
) -> Result<(Bytes, MetadataMap), Status> {
    let len = payload.encoded_len();
    if len > call.max_send {
        return Err(Status::out_of_range(format!(
            "Error, encoded message length too large: found {len} bytes, the limit is: {} bytes",
            call.max_send
        )));
    }
    let body = RequestBody::new(&payload, len);
    let mut request = http::Request::new(());
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = channel.uri(call.method);
    *request.version_mut() = http::Version::HTTP_2;
    let headers = request.headers_mut();
    if let Some(metadata) = call.metadata {
        for (name, value) in metadata.headers() {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(USER_AGENT, GrpcChannel::user_agent());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    if call.method.carries_endpoint() {
        if let Some(endpoint) = call.endpoint {
            if let Ok(value) = HeaderValue::from_bytes(endpoint.as_encoded_bytes()) {
                headers.insert(HeaderName::from_static("endpoint"), value);
            }
        }
    }
    if let Some(timeout) = call.timeout {
        headers.insert(HeaderName::from_static("grpc-timeout"), grpc_timeout(timeout));
    }
    if let Some(encoding) = payload.encoding() {
        headers.insert(
            HeaderName::from_static("grpc-encoding"),
            HeaderValue::from_static(encoding),
        );
    }
    if call.accept_compressed || payload.encoding().is_some() {
        headers.insert(
            HeaderName::from_static("grpc-accept-encoding"),
            HeaderValue::from_static(ACCEPT),
        );
    }

    let verdict = channel.tls.as_ref();
    let Http2 { mut sender, link } = channel.sender().await.map_err(|e| transport_status(&**e, verdict))?;
    let failed = |e: h2::Error| match link.ended() {
        // The library ended the connection (its keepalive): say why, not how h2 saw it.
        Some(why) => Status::unavailable(format!("connection lost: {why}")),
        None => transport_status(&e, verdict),
    };
    let _in_progress = link.call();
    let (response, mut send) = match sender.send_request(request, false) {
        Ok(opened) => opened,
        Err(e) => {
            // Nothing was sent; the connection takes no more streams (it is closing or broken):
            // the next call makes a new one.
            link.close();
            return Err(failed(e));
        }
    };
    drop(sender);
    let mut chunks = body.into_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        // A stream the server reset already: its response says how.
        if send.send_data(chunk, chunks.peek().is_none()).is_err() {
            break;
        }
    }
    let (parts, mut body) = response.await.map_err(failed)?.into_parts();
    check_response_head(parts.status, &parts.headers)?;
    // A trailers-only response: the status came with the headers.
    let headers_ok = final_status(&parts.headers).transpose()?.is_some();
    let mut message = ResponseMessage::with_encoding(response_encoding(&parts.headers)?);
    while let Some(data) = body.data().await {
        let data = data.map_err(failed)?;
        let _ = body.flow_control().release_capacity(data.len());
        message.push(data, call.max_receive)?;
    }
    let trailers = body.trailers().await.map_err(failed)?;
    finish(headers_ok, message, trailers, call.max_receive)
}

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// The `grpc-status` in `map`, if any: `Ok` for OK (read without building a `Status`: the common
/// case costs one lookup), else the status with its message and metadata.
fn final_status(map: &http::HeaderMap) -> Option<Result<(), Status>> {
    let code = map.get(&GRPC_STATUS)?;
    if code.as_bytes() == b"0" {
        return Some(Ok(()));
    }
    let status = Status::from_header_map(map).unwrap_or_else(missing_status);
    Some(if status.code() == Code::Ok { Ok(()) } else { Err(status) })
}

/// The end of a response: its final status (from the trailers, else the headers of a trailers-only
/// response, `headers_ok`), then its one message.
fn finish(
    headers_ok: bool,
    message: ResponseMessage,
    trailers: Option<http::HeaderMap>,
    max_receive: usize,
) -> Result<(Bytes, MetadataMap), Status> {
    match trailers.as_ref().and_then(final_status) {
        Some(status) => status?,
        None if headers_ok => {}
        None => return Err(missing_status()),
    }
    let body = message
        .finish(max_receive)?
        .ok_or_else(|| Status::internal("protocol error: the server sent no response message"))?;
    let mut trailers = trailers.unwrap_or_default();
    // Most answers end with `grpc-status` alone: nothing else to keep.
    if trailers.len() == 1 && trailers.contains_key(&GRPC_STATUS) {
        return Ok((body, MetadataMap::new()));
    }
    for reserved in [&GRPC_STATUS, &GRPC_MESSAGE, &GRPC_STATUS_DETAILS] {
        trailers.remove(reserved);
    }
    Ok((body, MetadataMap::from_headers(trailers)))
}

/// A response as a server could send it, for the response-parsing fuzz target
/// (`fuzz/fuzz_targets/response.rs`): the HTTP status and headers, the DATA frames, the trailers.
#[doc(hidden)]
pub fn parse_response(
    status: u16,
    headers: &http::HeaderMap,
    frames: &[Bytes],
    trailers: Option<http::HeaderMap>,
    max_receive: usize,
) -> Result<(Bytes, MetadataMap), Status> {
    let status = http::StatusCode::from_u16(status).map_err(|_| Status::internal("not an HTTP status"))?;
    check_response_head(status, headers)?;
    let headers_ok = final_status(headers).transpose()?.is_some();
    let mut message = ResponseMessage::with_encoding(response_encoding(headers)?);
    for frame in frames {
        message.push(frame.clone(), max_receive)?;
    }
    finish(headers_ok, message, trailers, max_receive)
}

/// How the library reads a failure below gRPC, as gRPC does: a stream the server reset with
/// RST_STREAM by its reason (`INTERNAL` for INTERNAL_ERROR, `UNAVAILABLE` only for REFUSED_STREAM);
/// a connection the server closed (GOAWAY) or that broke, could not be made or timed out:
/// `UNAVAILABLE`. (The call's deadline is the caller's: `Replica` bounds each call by it.)
/// A failure of a TLS channel whose last connection failed in TLS is that TLS failure.
pub(crate) fn transport_status(error: &(dyn std::error::Error + 'static), tls: Option<&TlsVerdict>) -> Status {
    if let Some(why) = super::tls::tls_failure(error) {
        return tls_status(why);
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            match h2.reason() {
                Some(reason) if h2.is_reset() && h2.is_remote() => return status_of_reset(reason),
                Some(reason) if h2.is_go_away() => {
                    return Status::unavailable(format!("the server closed the connection (GOAWAY {reason:?}): {h2}"))
                }
                _ => {}
            }
        }
        cause = e.source();
    }
    // The connection broke: a TLS connection that broke before the server sent a byte failed in TLS.
    if let Some(why) = tls.and_then(TlsVerdict::failure) {
        return tls_status(why);
    }
    Status::unavailable(format!("connection lost: {}", chain(error)))
}

fn tls_status(why: String) -> Status {
    let mut status = Status::unavailable(format!("{}{why}", super::tls::TLS_FAILED));
    status.set_source(std::sync::Arc::new(TlsFailure));
    status
}

/// An error and its causes, `: `-separated.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = e.source();
    }
    out
}
