//! A channel's HTTP/2 connection, on h2 directly: the handshake with the channel's settings, the
//! task that drives the connection and its keepalive, and what a call needs of it (a handle to open
//! streams with, and how the connection ended).
//!
//! Why not hyper's client: hyper passes each request from the caller's task through a dispatch
//! channel to its own task, which opens the stream, and spawns one more task per request that sends
//! the body; its keepalive takes a lock and reads the clock on every poll of the connection and
//! every frame received. A call here opens its stream and queues its body in its own poll, so the
//! connection's next poll writes HEADERS and DATA together, and the keepalive costs a clock read
//! per read from the socket (BENCHMARKS.md, finding 28).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use h2::{Ping, PingPong};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::timer::KeepaliveSleep;
use crate::policy::Http2Keepalive;
use crate::runtime::ChannelExecutor;

// hyper's defaults for its HTTP/2 client, which the channel used until it spoke to h2 itself.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_HEADER_LIST: u32 = 16 * 1024;
const MAX_SEND_BUFFER: usize = 1024 * 1024;
/// Streams the client may open before the server's SETTINGS say how many it allows (the least the
/// protocol recommends servers to allow).
const INITIAL_MAX_SEND_STREAMS: usize = 100;
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// The settings of a channel's connections.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame the client accepts.
    pub max_frame_size: u32,
    pub keepalive: Option<Http2Keepalive>,
}

/// An open HTTP/2 connection: the handle calls open streams with, and its state.
#[derive(Clone)]
pub(super) struct Http2 {
    pub sender: SendRequest<Bytes>,
    pub link: Arc<Link>,
}

/// What the calls of a connection and its task share.
pub(super) struct Link {
    /// The connection's task ended (or was dropped): new calls need a new connection.
    closed: AtomicBool,
    /// When the connection was made; `read_at` counts from it.
    opened: Instant,
    /// When bytes were last read from the socket: nanoseconds after `opened`.
    read_at: AtomicU64,
    /// Calls in progress on the connection (the keepalive PINGs only while there are).
    calls: AtomicUsize,
    /// Why the library ended the connection (its keepalive), for the calls it failed.
    ended: OnceLock<String>,
}

impl Link {
    fn new() -> Link {
        Link {
            closed: AtomicBool::new(false),
            opened: Instant::now(),
            read_at: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
            ended: OnceLock::new(),
        }
    }

    fn last_read(&self) -> Instant {
        self.opened + Duration::from_nanos(self.read_at.load(Ordering::Relaxed))
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// No new call goes to this connection (a stream could not be opened on it).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Why the library ended the connection, if it did.
    pub(super) fn ended(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    /// Counts a call in progress while the guard lives.
    pub(super) fn call(&self) -> CallInProgress<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        CallInProgress(self)
    }
}

/// A call in progress on a connection (see [`Link::call`]).
pub(super) struct CallInProgress<'a>(&'a Link);

impl Drop for CallInProgress<'_> {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The HTTP/2 handshake over `io` with `settings`; the connection's task is spawned on `executor`.
pub(super) async fn handshake<T>(io: T, settings: &Settings, executor: &ChannelExecutor) -> Result<Http2, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let link = Arc::new(Link::new());
    let io = Watched {
        io,
        link: link.clone(),
        timed: settings.keepalive.is_some(),
    };
    let mut builder = h2::client::Builder::new();
    builder
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .max_frame_size(settings.max_frame_size)
        .enable_push(false);
    let (sender, mut connection) = builder.handshake::<_, Bytes>(io).await?;
    let keepalive = match settings.keepalive {
        Some(k) => connection.ping_pong().map(|pings| KeepAlive::new(k, pings)),
        None => None,
    };
    executor.spawn(Box::pin(Driver {
        connection,
        keepalive,
        link: link.clone(),
    }));
    Ok(Http2 { sender, link })
}

/// The connection's task: h2's connection and the keepalive. The connection's failures reach the
/// calls through their streams; the keepalive's, through [`Link::ended`]. h2 ends the connection
/// (GOAWAY) once the channel dropped its handle and no call is left on it.
struct Driver<T> {
    connection: Connection<Watched<T>, Bytes>,
    keepalive: Option<KeepAlive>,
    link: Arc<Link>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if let Some(keepalive) = &mut this.keepalive {
            if let Poll::Ready(timeout) = keepalive.poll(cx, &this.link) {
                let _ = this.link.ended.set(format!(
                    "keep-alive timed out: the server did not answer a PING within {timeout:?}"
                ));
                // Dropping the connection fails its streams.
                return Poll::Ready(());
            }
        }
        Pin::new(&mut this.connection).poll(cx).map(|_| ())
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        // Before the connection (a field) is dropped and fails its streams.
        self.link.close();
    }
}

/// HTTP/2 keepalive as gRPC clients do it (gRFC A8), and as hyper's client did: while calls are
/// in progress, a PING once nothing was read for an interval; a PING not answered within the
/// timeout ends the connection. An idle connection gets no PING; when a call begins on one that
/// has read nothing for an interval, the PING goes out with the call's HEADERS (a call that opens
/// a stream wakes the connection's task, which polls the keepalive first).
struct KeepAlive {
    interval: Duration,
    timeout: Duration,
    pings: PingPong,
    sleep: KeepaliveSleep,
    /// The last read the sleep's deadline counts from (`Link::read_at`).
    seen: u64,
    /// A PING is out, unanswered.
    waiting: bool,
    /// The interval passed with no call in progress: the sleep is not armed, and the next poll
    /// that finds a call (and still no read) sends the PING.
    idle: bool,
}

impl KeepAlive {
    fn new(settings: Http2Keepalive, pings: PingPong) -> Self {
        // At least a millisecond (tokio's timer resolution): a zero interval would spin.
        let interval = settings.interval.max(Duration::from_millis(1));
        KeepAlive {
            interval,
            timeout: settings.timeout,
            pings,
            sleep: KeepaliveSleep::until(Instant::now() + interval),
            seen: 0,
            waiting: false,
            idle: false,
        }
    }

    /// `Ready(timeout)` when a PING was not answered in time.
    fn poll(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<Duration> {
        loop {
            if self.waiting {
                match self.pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.waiting = false;
                        self.seen = link.read_at.load(Ordering::Relaxed);
                        self.sleep.reset(Instant::now() + self.interval);
                        continue;
                    }
                    // The connection ended: its own poll says so.
                    Poll::Ready(Err(_)) => return Poll::Pending,
                    Poll::Pending => {}
                }
                ready!(Pin::new(&mut self.sleep).poll(cx));
                return Poll::Ready(self.timeout);
            }
            if !std::mem::take(&mut self.idle) {
                ready!(Pin::new(&mut self.sleep).poll(cx));
            }
            let read = link.read_at.load(Ordering::Relaxed);
            if read != self.seen {
                // Read since the deadline was set: the next one counts from that read.
                self.seen = read;
                self.sleep.reset(link.last_read() + self.interval);
            } else if link.calls.load(Ordering::Relaxed) == 0 {
                // Woken again by the next call's stream (or by a read).
                self.idle = true;
                return Poll::Pending;
            } else if self.pings.send_ping(Ping::opaque()).is_ok() {
                self.waiting = true;
                self.sleep.reset(Instant::now() + self.timeout);
            } else {
                self.sleep.reset(Instant::now() + self.interval);
            }
        }
    }
}

/// The connection's transport, telling the keepalive when bytes were read.
struct Watched<T> {
    io: T,
    link: Arc<Link>,
    /// The channel has a keepalive (else reads are not timed).
    timed: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.timed && buf.filled().len() > before {
            let at = this.link.opened.elapsed().as_nanos();
            this.link
                .read_at
                .store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
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
