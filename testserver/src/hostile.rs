//! Servers that answer gRPC calls the way a broken or hostile peer does (a proxy in front of a
//! restarting worker, a frozen process, a buggy server), on a raw HTTP/2 stack (h2) rather than
//! tonic, so that every byte and frame is as chosen here. Each request's body is read to the end
//! first (so flow control never stalls), then:
//!
//! - `http503`: `:status 503`, `content-type: text/html`, an HTML body, no gRPC status (what an
//!   ingress answers while the worker behind it restarts);
//! - `html200`: `:status 200` with `content-type: text/html` and an HTML body;
//! - `two`: a gRPC response with two messages (the request echoed twice), then `grpc-status: 0`;
//! - `truncated`: a message prefix declaring 4 GiB followed by 10 bytes, then `grpc-status: 0`;
//! - `no-status`: one message and the end of the stream, with no trailers;
//! - `rst-internal`: RST_STREAM(INTERNAL_ERROR) after the request; `rst-refused`: RST_STREAM(REFUSED_STREAM);
//! - `silent`: never answers (the HTTP/2 connection itself stays alive and acknowledges PINGs, as a
//!   runtime whose application threads hang does).

use std::str::FromStr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::Record;

/// How a hostile server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// HTTP 503 with an HTML body and no gRPC status.
    Http503,
    /// HTTP 200 with `content-type: text/html`.
    Html200,
    /// Two messages in a unary response.
    TwoMessages,
    /// A 4 GiB length prefix and 10 bytes.
    Truncated,
    /// A message and no `grpc-status` at all.
    NoStatus,
    /// RST_STREAM(INTERNAL_ERROR).
    RstInternal,
    /// RST_STREAM(REFUSED_STREAM).
    RstRefused,
    /// Never answers.
    Silent,
}

impl FromStr for Hostile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "http503" => Hostile::Http503,
            "html200" => Hostile::Html200,
            "two" => Hostile::TwoMessages,
            "truncated" => Hostile::Truncated,
            "no-status" => Hostile::NoStatus,
            "rst-internal" => Hostile::RstInternal,
            "rst-refused" => Hostile::RstRefused,
            "silent" => Hostile::Silent,
            other => {
                return Err(format!(
                    "unknown hostile behaviour {other:?} (http503, html200, two, truncated, no-status, rst-internal, rst-refused, silent)"
                ))
            }
        })
    }
}

/// Serves `listener` with `kind` until `stop` fires; records calls and request headers in `record`.
pub(crate) async fn serve(listener: TcpListener, kind: Hostile, record: Arc<Record>, mut stop: oneshot::Receiver<()>) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let record = record.clone();
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(stream).await else {
                return;
            };
            while let Some(Ok((request, respond))) = conn.accept().await {
                let record = record.clone();
                tokio::spawn(handle(request, respond, kind, record));
            }
        });
    }
}

async fn handle(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    kind: Hostile,
    record: Arc<Record>,
) {
    record.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    record
        .headers
        .lock()
        .unwrap()
        .push((request.uri().path().to_owned(), request.headers().clone()));
    let mut body = request.into_body();
    let mut message = BytesMut::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        message.put_slice(&chunk);
    }
    let grpc_head = || {
        let mut r = Response::new(());
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/grpc"));
        r
    };
    let ok_trailers = || {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t
    };
    match kind {
        Hostile::Http503 | Hostile::Html200 => {
            let mut r = Response::new(());
            *r.status_mut() = if kind == Hostile::Http503 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            if let Ok(mut stream) = respond.send_response(r, false) {
                let _ = stream.send_data(
                    Bytes::from_static(b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"),
                    true,
                );
            }
        }
        Hostile::TwoMessages => {
            if let Ok(mut stream) = respond.send_response(grpc_head(), false) {
                // `message` is the request with its 5-byte prefix: twice.
                let mut twice = BytesMut::with_capacity(2 * message.len());
                twice.put_slice(&message);
                twice.put_slice(&message);
                let _ = stream.send_data(twice.freeze(), false);
                let _ = stream.send_trailers(ok_trailers());
            }
        }
        Hostile::Truncated => {
            if let Ok(mut stream) = respond.send_response(grpc_head(), false) {
                let mut data = BytesMut::new();
                data.put_u8(0);
                data.put_u32(u32::MAX);
                data.put_slice(b"0123456789");
                let _ = stream.send_data(data.freeze(), false);
                let _ = stream.send_trailers(ok_trailers());
            }
        }
        Hostile::NoStatus => {
            if let Ok(mut stream) = respond.send_response(grpc_head(), false) {
                let _ = stream.send_data(message.freeze(), true);
            }
        }
        Hostile::RstInternal => respond.send_reset(Reason::INTERNAL_ERROR),
        Hostile::RstRefused => respond.send_reset(Reason::REFUSED_STREAM),
        Hostile::Silent => {
            // Keep the stream open (dropping `respond` would reset it) until the client gives up.
            std::future::pending::<()>().await;
            drop(respond);
        }
    }
}
