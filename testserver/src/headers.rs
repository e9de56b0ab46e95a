//! Records the HTTP/2 request headers of every call a test server receives (path and headers), so a
//! test can see exactly what a client put on the wire: request metadata, `te`, `content-type`,
//! `grpc-timeout`, the user agent.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::HeaderMap;

/// Every request's `(path, headers)`, in arrival order.
pub type SeenHeaders = Arc<Mutex<Vec<(String, HeaderMap)>>>;

/// A tower layer that records request headers into [`SeenHeaders`].
#[derive(Debug, Clone, Default)]
pub struct HeadersLayer(pub SeenHeaders);

impl<S> tower::Layer<S> for HeadersLayer {
    type Service = HeadersService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HeadersService {
            inner,
            seen: self.0.clone(),
        }
    }
}

/// See [`HeadersLayer`].
#[derive(Debug, Clone)]
pub struct HeadersService<S> {
    inner: S,
    seen: SeenHeaders,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for HeadersService<S>
where
    S: tower::Service<http::Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        self.seen
            .lock()
            .unwrap()
            .push((request.uri().path().to_owned(), request.headers().clone()));
        self.inner.call(request)
    }
}
