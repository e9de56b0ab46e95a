//! A connection that gathers writes: the full-size DATA frames of a large body are gathered and go
//! out several at a time.
//!
//! (Small writes went through a hold-back of one poll while hyper's client sent each body from a
//! task of its own, after the HEADERS had been written; a call now queues its HEADERS and DATA
//! together before the connection's task runs, so they go out in one write without it.)
//!
//! Why: h2 cuts a body into DATA frames of the peer's SETTINGS_MAX_FRAME_SIZE and
//! writes each frame by itself (frame header and payload in one `writev`, then a flush) before it
//! takes the next. Against a peer that keeps the protocol's default of 16 KiB (tonic, hyper and
//! grpc-go servers do) a 1 MiB request took 64 `writev` and as many TCP segments. While other sends
//! are in flight (the process-wide count of `runtime::SendInFlight`), a write that is a full 16 KiB
//! frame (a body cut at that size, so more follows) starts a batch: it and the writes after it are
//! copied into one buffer (up to [`BATCH`]) and reported written; a flush right after a write leaves
//! the batch for one more poll (and wakes the task for it); the next flush, or a write that does not
//! fit, writes it out (together with that write, which is not copied). A connection's task flushes
//! at the end of every poll, so a batch is written at the latest one poll after its last write;
//! shutting the connection down writes it first. A lone send gathers nothing: the copy would come
//! before the server's first byte and lengthen the request (1 MiB at 1 in flight: 6-9 % on the
//! median latency, for a third less CPU; BENCHMARKS.md finding 17). Peers with larger frames (the
//! gRPC server of jina 3.1.0's runtimes announces 4 MiB) take a large body in a few writes anyway:
//! their frames start no batch, and neither does a body under 16 KiB.
//! Used for TCP and TLS connections; a `unix:` socket's connection is not wrapped.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::runtime::several_sends_in_flight;

/// The protocol's default SETTINGS_MAX_FRAME_SIZE. A write of at least a frame header and this many
/// bytes whose last slice (the payload, or its rest after the first bytes h2 copies next to the
/// header) is at most this long is a full frame of a body cut at this size, and starts a batch.
const DEFAULT_FRAME: usize = 16 * 1024;

/// An HTTP/2 frame header's length.
const FRAME_HEADER: usize = 9;

/// The most bytes a batch gathers before they are written (16 full frames).
const BATCH: usize = 256 * 1024;

/// The connection's IO, gathering frame-sized writes (see the module documentation).
pub(crate) struct CoalescingIo<T> {
    io: T,
    /// Gathered bytes not yet written, from `sent` on.
    batch: Vec<u8>,
    sent: usize,
    /// Bytes were gathered since the last flush.
    fresh: bool,
    /// Whether a full frame starts a batch now ([`several_sends_in_flight`]; a test's own answer).
    gather: fn() -> bool,
}

impl<T> CoalescingIo<T> {
    pub(crate) fn new(io: T) -> Self {
        CoalescingIo::gathering_when(io, several_sends_in_flight)
    }

    fn gathering_when(io: T, gather: fn() -> bool) -> Self {
        CoalescingIo {
            io,
            batch: Vec::new(),
            sent: 0,
            fresh: false,
            gather,
        }
    }

    fn pending(&self) -> usize {
        self.batch.len() - self.sent
    }
}

impl<T: Write + Unpin> CoalescingIo<T> {
    /// Writes the gathered bytes, then as much of `bufs` as the socket takes in the same call;
    /// returns how many of `bufs`' bytes were written (`Ready(0)` only when `bufs` is empty).
    fn write_through(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        loop {
            let pending = self.pending();
            if pending == 0 {
                self.batch.clear();
                self.sent = 0;
                if bufs.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
            }
            let mut slices = [IoSlice::new(&[]); 64];
            slices[0] = IoSlice::new(&self.batch[self.sent..]);
            let n = bufs.len().min(63);
            slices[1..=n].copy_from_slice(&bufs[..n]);
            let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..=n]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if written < pending {
                self.sent += written;
                continue;
            }
            self.batch.clear();
            self.sent = 0;
            if written > pending || bufs.is_empty() {
                return Poll::Ready(Ok(written - pending));
            }
        }
    }
}

impl<T: Read + Unpin> Read for CoalescingIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for CoalescingIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let this = &mut *self;
        let pending = this.pending();
        let full_frame = len >= FRAME_HEADER + DEFAULT_FRAME
            && bufs.len() >= 2
            && bufs.last().is_some_and(|b| b.len() <= DEFAULT_FRAME)
            && (this.gather)();
        if pending > 0 || full_frame {
            if pending + len > BATCH {
                return this.write_through(cx, bufs);
            }
            if this.batch.capacity() == 0 {
                this.batch.reserve_exact(BATCH);
            }
            for b in bufs {
                this.batch.extend_from_slice(b);
            }
            this.fresh = true;
            return Poll::Ready(Ok(len));
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pending() > 0 {
            if this.fresh {
                this.fresh = false;
                cx.waker().wake_by_ref();
                return Poll::Ready(Ok(()));
            }
            ready!(this.write_through(cx, &[]))?;
            this.batch = Vec::new();
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.write_through(cx, &[]))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
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
    use hyper_util::rt::TokioIo;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Over a real TCP connection: a small write and a large one go out at once, without waking the
    /// task; the peer reads every byte in order.
    #[tokio::test]
    async fn small_and_large_writes_go_out_at_once() {
        let (mut io, mut server) = pair(several).await;
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        let small = Pin::new(&mut io).poll_write_vectored(&mut cx, &[IoSlice::new(b"HEAD"), IoSlice::new(b"ERS")]);
        assert!(matches!(small, Poll::Ready(Ok(7))), "{small:?}");
        let big = vec![7u8; 4096];
        let mut sent = 0;
        while sent < big.len() {
            match Pin::new(&mut io).poll_write(&mut cx, &big[sent..]) {
                Poll::Ready(Ok(n)) => sent += n,
                other => panic!("a large write goes out at once: {other:?}"),
            }
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "no write waits");

        let mut got = vec![0u8; 7 + big.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..7], b"HEADERS");
        assert!(got[7..].iter().all(|&b| b == 7));
    }

    /// A DATA frame as h2 writes it: the frame's header (9 bytes, after any small frames buffered
    /// before it), then its payload.
    fn frame(header: &[u8], payload: &[u8]) -> Vec<u8> {
        [header, payload].concat()
    }

    fn write_frame(io: &mut CoalescingIo<TokioIo<TcpStream>>, cx: &mut Context<'_>, header: &[u8], payload: &[u8]) {
        let written = Pin::new(io).poll_write_vectored(cx, &[IoSlice::new(header), IoSlice::new(payload)]);
        assert!(
            matches!(written, Poll::Ready(Ok(n)) if n == header.len() + payload.len()),
            "a full frame is taken whole: {written:?}"
        );
    }

    /// The gate's answers: other sends in flight, or none (the tests do not read the process-wide
    /// count, which the tests running alongside change).
    fn several() -> bool {
        true
    }

    fn one() -> bool {
        false
    }

    async fn pair(gather: fn() -> bool) -> (CoalescingIo<TokioIo<TcpStream>>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            CoalescingIo::gathering_when(TokioIo::new(client.unwrap()), gather),
            accepted.unwrap().0,
        )
    }

    /// Nothing has reached the peer (checked after a pause, as the bytes would have been sent).
    async fn nothing_arrived(server: &TcpStream) {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let mut probe = [0u8; 1];
        let got = server.try_read(&mut probe);
        assert!(
            matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "nothing was written yet: {got:?}"
        );
    }

    /// Full 16 KiB frames and what follows them are gathered, not written; a flush right after a
    /// write leaves them for one more poll (waking the task), the next flush writes them, in order.
    #[tokio::test]
    async fn full_frames_are_gathered_until_the_second_flush() {
        let (mut io, mut server) = pair(several).await;
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        let mut expected = Vec::new();
        for i in 0..3u8 {
            // h2's shape: the frame's header and, for a large payload, its first bytes copied next
            // to the header (up to 256 bytes), then the rest of the payload.
            let head = if i == 1 { 256 } else { FRAME_HEADER };
            let header = vec![i; head];
            let payload = vec![i + 100; DEFAULT_FRAME + FRAME_HEADER - head];
            write_frame(&mut io, &mut cx, &header, &payload);
            expected.extend(frame(&header, &payload));
        }
        let tail = Pin::new(&mut io).poll_write(&mut cx, b"a small frame after them");
        assert!(
            matches!(tail, Poll::Ready(Ok(24))),
            "a batch takes small writes too: {tail:?}"
        );
        expected.extend_from_slice(b"a small frame after them");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "gathering wakes nobody");
        nothing_arrived(&server).await;

        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "a flush after a write leaves the batch and wakes the task"
        );
        nothing_arrived(&server).await;
        assert!(matches!(Pin::new(&mut io).poll_flush(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);

        let mut got = vec![0u8; expected.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == expected, "the peer reads every byte in order");
        assert_eq!(io.batch.capacity(), 0, "a written batch gives its buffer back");
    }

    /// Frames that are not full (a body under 16 KiB, a peer with other frame sizes) and single
    /// large writes start no batch: they go out at once, as before.
    #[tokio::test]
    async fn other_frames_start_no_batch() {
        let (mut io, mut server) = pair(several).await;
        let waker = Waker::from(Arc::new(CountWakes(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut received = Vec::new();
        for payload in [
            vec![1u8; DEFAULT_FRAME - 1],
            vec![2u8; DEFAULT_FRAME + 1],
            vec![3u8; 1 << 20],
        ] {
            let header = [9u8; 9];
            let mut sent = 0;
            let whole = frame(&header, &payload);
            while sent < whole.len() {
                let bufs = if sent < 9 {
                    vec![IoSlice::new(&header[sent..]), IoSlice::new(&payload)]
                } else {
                    vec![IoSlice::new(&payload[sent - 9..])]
                };
                match Pin::new(&mut io).poll_write_vectored(&mut cx, &bufs) {
                    Poll::Ready(Ok(n)) => sent += n,
                    Poll::Pending => tokio::task::yield_now().await,
                    other => panic!("{other:?}"),
                }
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = server.try_read(&mut buf) {
                    received.extend_from_slice(&buf[..n]);
                }
            }
            assert_eq!(
                io.pending(),
                0,
                "nothing gathered for a frame of {} bytes",
                payload.len()
            );
            while received.len() < whole.len() {
                let mut buf = vec![0u8; 1 << 16];
                let n = server.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
            }
            assert!(received == whole, "a frame of {} bytes arrived whole", payload.len());
            received.clear();
        }
    }

    /// With no other send in flight a full frame goes out at once: gathering a lone request would
    /// put the copy of its body before the server's first byte.
    #[tokio::test]
    async fn a_lone_send_gathers_nothing() {
        let (mut io, mut server) = pair(one).await;
        let waker = Waker::from(Arc::new(CountWakes(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let header = [5u8; FRAME_HEADER];
        let payload = vec![6u8; DEFAULT_FRAME];
        let written = Pin::new(&mut io).poll_write_vectored(&mut cx, &[IoSlice::new(&header), IoSlice::new(&payload)]);
        let Poll::Ready(Ok(n)) = written else {
            panic!("a write to an empty socket goes out: {written:?}")
        };
        assert_eq!(io.pending(), 0, "nothing gathered");
        let mut got = vec![0u8; n];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == frame(&header, &payload)[..n], "the frame's bytes arrived");
    }

    /// A batch that would grow past [`BATCH`] is written with the write that does not fit (which is
    /// not copied); partial writes of a slow peer keep every byte in order; shutting down writes what
    /// is gathered before the connection closes.
    #[tokio::test]
    async fn a_full_batch_goes_out_and_partial_writes_keep_the_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(8192).unwrap();
        let (client, accepted) = tokio::join!(socket.connect(addr), listener.accept());
        let mut io = CoalescingIo::gathering_when(TokioIo::new(client.unwrap()), several);
        let mut server = accepted.unwrap().0;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        });

        let mut expected = Vec::new();
        let mut largest_batch = 0;
        for i in 0..70u32 {
            let header: Vec<u8> = (0..9).map(|k| (i * 7 + k) as u8).collect();
            let payload: Vec<u8> = (0..DEFAULT_FRAME as u32).map(|k| (k * 31 + i) as u8).collect();
            expected.extend(frame(&header, &payload));
            let mut sent = 0;
            while sent < 9 + DEFAULT_FRAME {
                let written = std::future::poll_fn(|cx| {
                    let bufs = if sent < 9 {
                        [IoSlice::new(&header[sent..]), IoSlice::new(&payload)]
                    } else {
                        [IoSlice::new(&[]), IoSlice::new(&payload[sent - 9..])]
                    };
                    Pin::new(&mut io).poll_write_vectored(cx, &bufs)
                })
                .await
                .unwrap();
                assert!(written > 0);
                sent += written;
                largest_batch = largest_batch.max(io.pending());
            }
            if i % 10 == 9 {
                let small = [i as u8; 17];
                let n = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &small))
                    .await
                    .unwrap();
                assert_eq!(n, 17);
                expected.extend_from_slice(&small);
            }
        }
        assert!(
            largest_batch <= BATCH,
            "a batch holds at most {BATCH} bytes, held {largest_batch}"
        );
        assert!(
            largest_batch > BATCH - 2 * DEFAULT_FRAME,
            "frames were gathered: {largest_batch}"
        );
        assert!(io.pending() > 0, "the last frames are still gathered");
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx))
            .await
            .unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the peer reads every byte in order");
    }
}
