//! The request-bytes check: every client must send the same bytes (the payload file) to the same
//! method, or the comparison is not fair. A recording gRPC server (raw bytes, no protobuf decoding)
//! runs in the runner's process; each client sends exactly one request to it (no warm-up,
//! `max_requests=1`) and the server keeps what arrived: the path, the message bytes after the gRPC
//! frame header (tonic has already removed it; compression would have been refused), the
//! `content-type`, `grpc-encoding` and `user-agent` headers. It answers with the request bytes
//! themselves (a valid `DataRequestProto` of the request's size, which every client accepts).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};

use crate::clients::RawCodec;

/// The method every client must call for one data request.
pub const PROCESS_SINGLE_DATA: &str = "/jina.JinaSingleDataRequestRPC/process_single_data";

/// One request as the recording server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub grpc_encoding: String,
    pub user_agent: String,
    pub message: Bytes,
}

/// What a client sent, compared with what it should have sent.
pub fn compare(received: &[Received], payload: &[u8]) -> Result<Received, String> {
    let [r] = received else {
        return Err(format!("{} requests arrived, expected exactly 1", received.len()));
    };
    if r.path != PROCESS_SINGLE_DATA {
        return Err(format!("called {}, expected {PROCESS_SINGLE_DATA}", r.path));
    }
    if !r.grpc_encoding.is_empty() && r.grpc_encoding != "identity" {
        return Err(format!("compressed request (grpc-encoding {})", r.grpc_encoding));
    }
    if r.message[..] != *payload {
        let at = r
            .message
            .iter()
            .zip(payload)
            .position(|(a, b)| a != b)
            .unwrap_or(r.message.len().min(payload.len()));
        return Err(format!(
            "{} bytes differ from the {}-byte payload file (first difference at byte {at})",
            r.message.len(),
            payload.len()
        ));
    }
    Ok(r.clone())
}

/// A recording server on 127.0.0.1 (its own tokio runtime); stops when dropped.
pub struct Recorder {
    pub address: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Recorder {
    pub fn start() -> Result<Recorder, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = RecordService(received.clone());
        let address = runtime.block_on(async {
            let incoming = tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into())
                .map_err(|e| format!("bind: {e}"))?
                .with_nodelay(Some(true));
            let address = incoming.local_addr().map_err(|e| e.to_string())?.to_string();
            tokio::spawn(async move {
                let _ = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            Ok::<_, String>(address)
        })?;
        Ok(Recorder {
            address,
            received,
            stop: Some(stop),
            runtime: Some(runtime),
        })
    }

    /// Takes (and clears) what arrived so far.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Serves `jina.JinaSingleDataRequestRPC` (every method path under it is recorded and echoed, so
/// a client calling the wrong one is seen, not just refused).
#[derive(Clone)]
struct RecordService(Arc<Mutex<Vec<Received>>>);

impl tonic::server::NamedService for RecordService {
    const NAME: &'static str = "jina.JinaSingleDataRequestRPC";
}

impl<B> Service<http::Request<B>> for RecordService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let template = Received {
            path: req.uri().path().to_owned(),
            content_type: header("content-type"),
            grpc_encoding: header("grpc-encoding"),
            user_agent: header("user-agent"),
            message: Bytes::new(),
        };
        let unary = RecordUnary {
            received: self.0.clone(),
            template,
        };
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(RawCodec).apply_max_message_size_config(Some(usize::MAX), Some(usize::MAX));
            Ok(grpc.unary(unary, req).await)
        })
    }
}

struct RecordUnary {
    received: Arc<Mutex<Vec<Received>>>,
    template: Received,
}

impl tonic::server::UnaryService<Bytes> for RecordUnary {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let message = request.into_inner();
        let mut r = self.template.clone();
        r.message = message.clone();
        self.received.lock().unwrap().push(r);
        Box::pin(async move { Ok(tonic::Response::new(message)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorder keeps the exact bytes a gRPC client sent, and `compare` tells a different
    /// payload, a second request and a wrong method apart from the right one.
    #[test]
    fn records_and_compares() {
        let recorder = Recorder::start().expect("recorder");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let payload = Bytes::from(crate::runner::payload(100));
        let call = |path: &'static str, body: Bytes| {
            let address = recorder.address.clone();
            rt.block_on(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut grpc = tonic::client::Grpc::new(channel);
                grpc.ready().await.unwrap();
                grpc.unary(
                    tonic::Request::new(body),
                    http::uri::PathAndQuery::from_static(path),
                    RawCodec,
                )
                .await
                .map(|r| r.into_inner())
            })
        };
        let echoed = call(PROCESS_SINGLE_DATA, payload.clone()).expect("call");
        assert_eq!(echoed, payload);
        let got = recorder.take();
        assert!(compare(&got, &payload).is_ok(), "{:?}", compare(&got, &payload));
        assert_eq!(got[0].content_type, "application/grpc");

        let mut other = payload.to_vec();
        other[60] ^= 1;
        call(PROCESS_SINGLE_DATA, Bytes::from(other)).expect("call");
        let err = compare(&recorder.take(), &payload).unwrap_err();
        assert!(err.contains("first difference at byte 60"), "{err}");

        call(PROCESS_SINGLE_DATA, payload.clone()).expect("call");
        call(PROCESS_SINGLE_DATA, payload.clone()).expect("call");
        assert!(compare(&recorder.take(), &payload).unwrap_err().contains("2 requests"));

        call("/jina.JinaSingleDataRequestRPC/other", payload.clone()).expect("call");
        assert!(compare(&recorder.take(), &payload)
            .unwrap_err()
            .contains("called /jina.JinaSingleDataRequestRPC/other"));
        assert!(compare(&[], &payload).unwrap_err().contains("0 requests"));
    }
}
