//! Custom trailing metadata for a tonic server. Jina's Python runtimes send `is-error` as *trailing*
//! metadata; tonic only sends a handler's metadata as headers. A handler puts [`Trailers`] into the
//! response extensions and [`TrailersLayer`] appends them to the trailers frame tonic writes.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderMap;
use http_body::{Body, Frame};

/// Metadata to send as trailers (put it into `tonic::Response::extensions_mut()`).
#[derive(Debug, Clone, Default)]
pub struct Trailers(pub HeaderMap);

/// A tower layer that moves [`Trailers`] from the response extensions into the trailers frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrailersLayer;

impl<S> tower::Layer<S> for TrailersLayer {
    type Service = TrailersService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TrailersService { inner }
    }
}

/// See [`TrailersLayer`].
#[derive(Debug, Clone)]
pub struct TrailersService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for TrailersService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<WithTrailers>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let (mut parts, body) = future.await?.into_parts();
            let extra = parts.extensions.remove::<Trailers>().map(|t| t.0);
            Ok(http::Response::from_parts(parts, WithTrailers { inner: body, extra }))
        })
    }
}

/// A response body whose trailers frame gets extra entries.
pub struct WithTrailers {
    inner: tonic::body::Body,
    extra: Option<HeaderMap>,
}

impl Body for WithTrailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                if let Some(extra) = this.extra.take() {
                    for (name, value) in extra.iter() {
                        trailers.append(name.clone(), value.clone());
                    }
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
