//! A connection whose small writes wait for one more poll of its task, so that the frames a request
//! is made of go out in one write.
//!
//! Why: h2 opens a new stream (and gives it flow-control capacity) only when the connection's task
//! runs, and writes the stream's HEADERS in that same poll; hyper's task that sends the body waits
//! for that capacity, so the DATA frame is queued only after the HEADERS were written: two `writev`
//! per request at 1 in flight, two TCP segments for the server to read. Here a small write (under
//! [`SMALL`]) first wakes the connection's task and returns `Pending`; the body's task, woken by the
//! capacity before, runs first and queues its DATA, and the next poll writes HEADERS and DATA
//! together. Large writes (a big request's DATA) and the second try of a write go through at once.
//! Used for TCP and TLS connections; a `unix:` address keeps tonic's own connector.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// Writes under this size wait for one more poll (a request's HEADERS, a small DATA frame, PINGs,
/// WINDOW_UPDATEs).
const SMALL: usize = 4096;

/// The connection's IO, holding small writes back once (see the module documentation).
pub(crate) struct CoalescingIo<T> {
    io: T,
    /// A write was held back once: the next one goes through.
    held: bool,
}

impl<T> CoalescingIo<T> {
    pub(crate) fn new(io: T) -> Self {
        CoalescingIo { io, held: false }
    }

    /// Whether a write of `len` bytes waits for one more poll; wakes the task when it does.
    fn hold(&mut self, len: usize, cx: &mut Context<'_>) -> bool {
        if self.held || len >= SMALL || len == 0 {
            self.held = false;
            return false;
        }
        self.held = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl<T: Read + Unpin> Read for CoalescingIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for CoalescingIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.hold(buf.len(), cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if self.hold(len, cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A connector whose connections are [`CoalescingIo`].
#[derive(Clone)]
pub(crate) struct Coalescing<C>(pub(crate) C);

impl<C> tower_service::Service<http::Uri> for Coalescing<C>
where
    C: tower_service::Service<http::Uri>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
{
    type Response = CoalescingIo<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connect = self.0.call(uri);
        Box::pin(async move { connect.await.map(CoalescingIo::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use tokio::io::AsyncReadExt;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Over a real TCP connection: a small write waits one poll (and wakes its task for it), its
    /// second try goes out; a large write goes out at once; the peer reads every byte in order.
    #[tokio::test]
    async fn a_small_write_waits_one_poll_a_large_one_none() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let mut io = CoalescingIo::new(hyper_util::rt::TokioIo::new(client.unwrap()));
        let (mut server, _) = accepted.unwrap();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        assert!(Pin::new(&mut io).poll_write(&mut cx, b"HEADERS").is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the held write wakes its task");
        let again = Pin::new(&mut io).poll_write_vectored(&mut cx, &[IoSlice::new(b"HEAD"), IoSlice::new(b"ERS")]);
        assert!(matches!(again, Poll::Ready(Ok(7))), "{again:?}");
        let big = vec![7u8; SMALL];
        let mut sent = 0;
        while sent < big.len() {
            match Pin::new(&mut io).poll_write(&mut cx, &big[sent..]) {
                Poll::Ready(Ok(n)) => sent += n,
                other => panic!("a large write goes out at once: {other:?}"),
            }
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "no wait for a large write");

        let mut got = vec![0u8; 7 + SMALL];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..7], b"HEADERS");
        assert!(got[7..].iter().all(|&b| b == 7));
    }
}
