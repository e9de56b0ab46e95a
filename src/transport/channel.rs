//! gRPC channels to one address: jina's channel options, plaintext or TLS with rustls, a lazy
//! HTTP/2 connection that is made again when it was lost, and the connection's own failure
//! detection (a connect timeout, TCP_USER_TIMEOUT, HTTP/2 keepalive PINGs while calls are
//! outstanding).
//!
//! A call opens its stream on the connection itself (h2's client, `http2.rs`). A tonic `Channel`
//! put a request buffer task between the call and the connection, and five layers (origin, user
//! agent, timeout, reconnect, boxed service) around it: one more task woken per call, and about 7k
//! of the 68k instructions a call cost at 1 in flight (BENCHMARKS.md, finding 26). What those layers
//! did is done here once per channel (the origin and the user agent) or by the caller
//! (`grpc-timeout`: the replica bounds each call by its deadline itself).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use http::header::HeaderValue;
use http::uri::{PathAndQuery, Scheme};
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::coalesce::Coalescing;
use super::http2::{self, Http2, Settings};
use super::tls::{TlsConnector, TlsIo, TlsVerdict};
use crate::address::{Address, Kind};
use crate::error::{Error, Result};
use crate::policy::ConnectionOptions;
use crate::request::Method;
use crate::runtime::ChannelExecutor;

/// The largest HTTP/2 frame the channel accepts (its SETTINGS_MAX_FRAME_SIZE; the protocol's default,
/// and hyper's, is 16 KiB): the size of the client's stream window, so a response up to that size can
/// come in one DATA frame, read in a few large reads and handed over without being reassembled. With
/// 16 KiB frames a 1 MiB response took 129 reads of 8 KiB and a copy into one buffer; with this, 3
/// reads and none (BENCHMARKS.md). The server still picks each frame's size (jina 3.1.0's gRPC
/// server and tonic send larger frames when allowed); the memory held per frame is what its stream
/// window already allowed.
const MAX_RECEIVED_FRAME: u32 = 2 * 1024 * 1024;

/// The `user-agent` of every call (tonic's channel sent `tonic/<its version>`).
const USER_AGENT: &str = concat!("jina-net/", env!("CARGO_PKG_VERSION"));

/// The `:authority` of a call over a Unix domain socket, which has no host to name: `tonic`, as
/// tonic's channel sent.
const UNIX_ORIGIN: &str = "http://tonic";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Sender = Http2;
type Connecting = Pin<Box<dyn Future<Output = std::result::Result<Sender, BoxError>> + Send>>;
type Connect = Box<dyn Fn() -> Connecting + Send + Sync>;

/// Creates a channel to `address` whose connection tasks (the HTTP/2 connection and its keepalive,
/// the connection attempts) run on `runtime`. The channel connects lazily (on
/// the first call) and again after its connection was lost; TLS is used when `options.tls.force`
/// is set or the address says `https://` / `grpcs://`, trusting `options.tls.root_certificates_pem`
/// instead of the system roots when given, with the client identity and the server-name override
/// of `options.tls`. A `unix:` address connects to its socket (plaintext only).
pub fn get_grpc_channel_on(runtime: &Handle, address: &Address, options: &ConnectionOptions) -> Result<GrpcChannel> {
    let unix = address.kind() == Kind::Unix;
    let use_tls = options.tls.force || address.tls();
    if unix && use_tls {
        return Err(Error::Tls {
            address: address.to_string(),
            reason: "TLS over a Unix domain socket is not supported".into(),
        });
    }
    let invalid = || Error::InvalidAddress {
        address: address.to_string(),
        reason: "not a valid URI authority",
    };
    // Over TLS the connector dials `http://host:port` and runs the handshake itself (rustls, as
    // tonic's TLS did); requests still say `https` (the origin).
    let origin: Uri = if unix {
        Uri::from_static(UNIX_ORIGIN)
    } else {
        address.uri(use_tls).parse().map_err(|_| invalid())?
    };
    let uris = Uris::new(&origin).ok_or_else(invalid)?;
    let channel = &options.channel;
    let executor = ChannelExecutor::new(runtime);
    let attempt = Attempt {
        settings: Settings {
            max_frame_size: MAX_RECEIVED_FRAME,
            keepalive: channel.http2_keepalive,
        },
        executor: executor.clone(),
        timeout: channel.connect_timeout,
    };
    if unix {
        let path: Arc<str> = address.host().into();
        return Ok(GrpcChannel::new(
            uris,
            executor,
            None,
            attempt.connector(UnixConnector(path), origin),
        ));
    }
    // hyper's TCP connector, with TCP_USER_TIMEOUT.
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(channel.connect_timeout);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    http.set_tcp_user_timeout(channel.tcp_user_timeout);
    if !use_tls {
        return Ok(GrpcChannel::new(
            uris,
            executor,
            None,
            attempt.connector(Coalescing(http), origin),
        ));
    }
    let tls = TlsConnector::new(&options.tls, address.host())?;
    let verdict = tls.verdict();
    let dial: Uri = address.uri(false).parse().map_err(|_| invalid())?;
    let connect = attempt.connector(Coalescing(TlsOverTcp { tcp: http, tls }), dial);
    Ok(GrpcChannel::new(uris, executor, Some(verdict), connect))
}

/// A channel: its connection, made when a call needs it, and the request URI of each method.
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    connection: Arc<Connection>,
    uris: Arc<Uris>,
    pub(crate) tls: Option<TlsVerdict>,
}

impl GrpcChannel {
    fn new(uris: Uris, executor: ChannelExecutor, tls: Option<TlsVerdict>, connect: Connect) -> GrpcChannel {
        GrpcChannel {
            connection: Arc::new(Connection {
                state: Mutex::new(State::Idle),
                connect,
                executor,
            }),
            uris: Arc::new(uris),
            tls,
        }
    }

    /// The request URI of `method` (scheme, authority, path), made once: a clone shares its bytes.
    pub(crate) fn uri(&self, method: Method) -> Uri {
        self.uris.0[Uris::index(method)].clone()
    }

    /// The `user-agent` of every call.
    pub(crate) fn user_agent() -> HeaderValue {
        HeaderValue::from_static(USER_AGENT)
    }

    /// The connection: the current one while it is open, else the one of a new
    /// connection (an attempt shared by the calls that wait for it; each call after a failed
    /// attempt starts another). Made on the channel's runtime, so that a call given up does not
    /// end an attempt other calls wait for.
    pub(super) async fn sender(&self) -> std::result::Result<Sender, Arc<BoxError>> {
        let attempt = {
            let mut state = lock(&self.connection.state);
            match &*state {
                State::Ready(open) if !open.link.is_closed() => return Ok(open.clone()),
                State::Connecting(attempt) => attempt.clone(),
                State::Ready(_) | State::Idle => {
                    let attempt = Arc::new(Pending::default());
                    *state = State::Connecting(attempt.clone());
                    drop(state);
                    self.connection.start(attempt.clone());
                    attempt
                }
            }
        };
        attempt.result().await
    }
}

/// The request URIs of the three methods (see [`Uris::index`]).
#[derive(Debug)]
struct Uris([Uri; 3]);

impl Uris {
    const METHODS: [Method; 3] = [Method::ProcessSingleData, Method::ProcessData, Method::ProcessControl];

    fn index(method: Method) -> usize {
        match method {
            Method::ProcessSingleData => 0,
            Method::ProcessData => 1,
            Method::ProcessControl => 2,
        }
    }

    fn new(origin: &Uri) -> Option<Uris> {
        let with_path = |method: Method| {
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(origin.scheme().cloned().unwrap_or(Scheme::HTTP));
            parts.authority = Some(origin.authority()?.clone());
            parts.path_and_query = Some(PathAndQuery::from_static(method.path()));
            Uri::from_parts(parts).ok()
        };
        let [a, b, c] = Self::METHODS;
        Some(Uris([with_path(a)?, with_path(b)?, with_path(c)?]))
    }
}

/// The connection of a channel, and how a new one is made.
struct Connection {
    state: Mutex<State>,
    connect: Connect,
    executor: ChannelExecutor,
}

enum State {
    /// No connection: the next call makes one.
    Idle,
    /// An attempt in progress, which calls wait for.
    Connecting(Arc<Pending>),
    /// A connection (it may have closed since: the next call then makes another).
    Ready(Sender),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never waits: formatted while the state is locked, it says so.
        let state = match self.state.try_lock().as_deref() {
            Ok(State::Idle) => "idle",
            Ok(State::Connecting(_)) => "connecting",
            Ok(State::Ready(s)) if s.link.is_closed() => "closed",
            Ok(State::Ready(_)) => "ready",
            Err(_) => "locked",
        };
        f.debug_struct("Connection").field("state", &state).finish()
    }
}

impl Connection {
    /// Runs `attempt` on the channel's runtime: its result goes to the calls that wait, and the
    /// state becomes `Ready` (or `Idle` after a failure) unless the channel was dropped meanwhile.
    fn start(self: &Arc<Self>, attempt: Arc<Pending>) {
        let connecting = (self.connect)();
        let mut end = Ending {
            connection: Arc::downgrade(self),
            attempt: Some(attempt),
        };
        self.executor.spawn(Box::pin(async move {
            let result = connecting.await.map_err(Arc::new);
            end.finish(result);
        }));
    }
}

/// The end of an attempt: its result to the state and to the calls that wait. An attempt dropped
/// before its end (its runtime shut down, or it panicked) ends as failed, so that no call waits
/// for it forever.
struct Ending {
    connection: Weak<Connection>,
    attempt: Option<Arc<Pending>>,
}

impl Ending {
    fn finish(&mut self, result: std::result::Result<Sender, Arc<BoxError>>) {
        let Some(attempt) = self.attempt.take() else { return };
        if let Some(connection) = self.connection.upgrade() {
            *lock(&connection.state) = match &result {
                Ok(sender) => State::Ready(sender.clone()),
                Err(_) => State::Idle,
            };
        }
        attempt.finish(result);
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.finish(Err(Arc::new(
            "the connection attempt ended without a result (its runtime shut down)".into(),
        )));
    }
}

/// The result of one connection attempt, for the calls that wait for it.
#[derive(Default)]
struct Pending {
    result: OnceLock<std::result::Result<Sender, Arc<BoxError>>>,
    done: Notify,
}

impl Pending {
    fn finish(&self, result: std::result::Result<Sender, Arc<BoxError>>) {
        let _ = self.result.set(result);
        self.done.notify_waiters();
    }

    async fn result(&self) -> std::result::Result<Sender, Arc<BoxError>> {
        loop {
            // Made before the check: a `notify_waiters` after it wakes this (tokio's `Notify`).
            let done = self.done.notified();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            done.await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a connection attempt does besides dialing: the HTTP/2 handshake with the channel's
/// settings, the connect timeout over both, and the connection task spawned.
#[derive(Clone)]
struct Attempt {
    settings: Settings,
    executor: ChannelExecutor,
    timeout: Option<Duration>,
}

/// A connect that took longer than the channel's connect timeout.
#[derive(Debug)]
struct ConnectTimedOut(Duration);

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connect timed out after {:?}", self.0)
    }
}

impl std::error::Error for ConnectTimedOut {}

impl Attempt {
    /// How the channel makes a connection: `connector` dials `uri`.
    fn connector<C>(self, connector: C, uri: Uri) -> Connect
    where
        C: tower_service::Service<Uri> + Clone + Send + Sync + 'static,
        C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        C::Future: Send + 'static,
        C::Error: Into<BoxError>,
    {
        Box::new(move || {
            let (mut connector, uri, attempt) = (connector.clone(), uri.clone(), self.clone());
            Box::pin(async move {
                let handshake = async {
                    std::future::poll_fn(|cx| connector.poll_ready(cx))
                        .await
                        .map_err(Into::into)?;
                    let io = connector.call(uri).await.map_err(Into::into)?;
                    let open = http2::handshake(TokioIo::new(io), &attempt.settings, &attempt.executor).await?;
                    Ok::<_, BoxError>(open)
                };
                match attempt.timeout {
                    Some(t) => tokio::time::timeout(t, handshake)
                        .await
                        .map_err(|_| Box::new(ConnectTimedOut(t)) as BoxError)?,
                    None => handshake.await,
                }
            }) as Connecting
        })
    }
}

/// The connector of a Unix domain socket.
#[derive(Clone)]
struct UnixConnector(Arc<str>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move { Ok(TokioIo::new(tokio::net::UnixStream::connect(&*path).await?)) })
    }
}

/// The connector of a TLS channel: TCP (with the channel's socket options), then the handshake.
#[derive(Clone)]
struct TlsOverTcp {
    tcp: HttpConnector,
    tls: TlsConnector,
}

impl tower_service::Service<Uri> for TlsOverTcp {
    type Response = TokioIo<TlsIo>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connect = self.tcp.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connect.await?.into_inner();
            Ok(TokioIo::new(tls.connect(tcp).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::request::{Payload, Request};
    use crate::transport::{unary, Call};

    #[test]
    fn each_method_has_its_own_uri_with_the_origin() {
        let origin: Uri = "https://example.com:443".parse().unwrap();
        let uris = Uris::new(&origin).unwrap();
        for method in Uris::METHODS {
            let uri = &uris.0[Uris::index(method)];
            assert_eq!(uri.path(), method.path());
            assert_eq!(uri.scheme_str(), Some("https"));
            assert_eq!(uri.authority().map(|a| a.as_str()), Some("example.com:443"));
        }
        assert!(Uris::new(&Uri::from_static("/no/authority")).is_none());
    }

    /// A gRPC echo server (h2's server: it answers each call with the message it got) that counts
    /// the connections it accepts, and can close them.
    struct Echo {
        address: String,
        accepted: Arc<AtomicUsize>,
        connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
        _accept: JoinHandle<()>,
    }

    impl Echo {
        async fn start() -> Echo {
            Echo::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
        }

        fn on(listener: TcpListener) -> Echo {
            let address = listener.local_addr().unwrap().to_string();
            let accepted = Arc::new(AtomicUsize::new(0));
            let connections = Arc::new(Mutex::new(Vec::new()));
            let (a, c) = (accepted.clone(), connections.clone());
            let accept = tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    a.fetch_add(1, Ordering::SeqCst);
                    lock(&c).push(tokio::spawn(async move {
                        let Ok(mut connection) = h2::server::handshake(tcp).await else {
                            return;
                        };
                        while let Some(Ok((request, mut respond))) = connection.accept().await {
                            tokio::spawn(async move {
                                let mut body = request.into_body();
                                let mut message = Vec::new();
                                while let Some(Ok(data)) = body.data().await {
                                    let _ = body.flow_control().release_capacity(data.len());
                                    message.extend_from_slice(&data);
                                }
                                let head = http::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(())
                                    .unwrap();
                                let mut stream = respond.send_response(head, false).unwrap();
                                stream.send_data(Bytes::from(message), false).unwrap();
                                let mut trailers = http::HeaderMap::new();
                                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                                let _ = stream.send_trailers(trailers);
                            });
                        }
                    }));
                }
            });
            Echo {
                address,
                accepted,
                connections,
                _accept: accept,
            }
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        /// Closes every connection accepted so far.
        fn cut(&self) {
            for connection in lock(&self.connections).drain(..) {
                connection.abort();
            }
        }
    }

    fn channel_to(address: &str) -> GrpcChannel {
        let address = Address::parse(address).unwrap();
        get_grpc_channel_on(&Handle::current(), &address, &ConnectionOptions::default()).unwrap()
    }

    async fn call(channel: &GrpcChannel) -> std::result::Result<Bytes, tonic::Status> {
        let (payload, method) = Payload::new(&[Request::data(Bytes::from_static(b"\x0a\x02id"))]).unwrap();
        let call = Call {
            method,
            endpoint: None,
            timeout: None,
            metadata: None,
            accept_compressed: false,
            max_send: usize::MAX,
            max_receive: usize::MAX,
        };
        unary(channel, payload, call).await.map(|(body, _)| body)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_made_before_the_channel_connected_share_one_connection() {
        let server = Echo::start().await;
        let channel = channel_to(&server.address);
        let calls = (0..16).map(|_| call(&channel));
        for answer in futures_util::future::join_all(calls).await {
            assert_eq!(answer.unwrap(), Bytes::from_static(b"\x0a\x02id"));
        }
        assert_eq!(server.accepted(), 1, "one connection for the 16 calls");
        call(&channel).await.unwrap();
        assert_eq!(server.accepted(), 1, "and the next call on it");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_given_up_while_the_channel_connects_leaves_the_attempt_to_the_next_call() {
        let server = Echo::start().await;
        let channel = channel_to(&server.address);
        // Polled once (it starts the connection attempt), then dropped.
        let mut first = Box::pin(call(&channel));
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(first.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "{polled:?}");
        drop(first);
        let next = tokio::time::timeout(Duration::from_secs(10), call(&channel)).await;
        assert!(matches!(next, Ok(Ok(_))), "{next:?}");
        assert_eq!(server.accepted(), 1, "the attempt the dropped call started");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_connection_is_made_again_by_a_later_call() {
        let server = Echo::start().await;
        let channel = channel_to(&server.address);
        call(&channel).await.unwrap();
        server.cut();
        // The calls made before the channel saw the connection close fail as a lost connection.
        let mut failed = 0;
        let answer = loop {
            match call(&channel).await {
                Ok(answer) => break answer,
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    failed += 1;
                    assert!(failed < 100, "no new connection after {failed} calls: {status:?}");
                    tokio::task::yield_now().await;
                }
            }
        };
        assert_eq!(answer, Bytes::from_static(b"\x0a\x02id"));
        assert_eq!(server.accepted(), 2, "a second connection");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_waiting_for_an_attempt_its_runtime_dropped_fails() {
        let server = Echo::start().await;
        // The channel's runtime, never driven: the attempt waits there until it is dropped.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let address = Address::parse(&server.address).unwrap();
        let channel = get_grpc_channel_on(runtime.handle(), &address, &ConnectionOptions::default()).unwrap();
        let waiting = tokio::spawn(async move { call(&channel).await });
        while runtime.metrics().num_alive_tasks() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::task::spawn_blocking(move || drop(runtime)).await.unwrap();
        let failed = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        let status = failed.expect("the call ended").unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("runtime shut down"), "{status:?}");
        assert_eq!(server.accepted(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_to_a_peer_that_stopped_answering_fails_once_a_ping_goes_unanswered() {
        // A peer whose kernel accepts the connection but that reads nothing and answers nothing
        // (a frozen process): only the keepalive notices.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::parse(&listener.local_addr().unwrap().to_string()).unwrap();
        let held = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(tcp);
        });
        let mut options = ConnectionOptions::default();
        options.channel.http2_keepalive = Some(crate::policy::Http2Keepalive {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
        });
        let channel = get_grpc_channel_on(&Handle::current(), &address, &options).unwrap();
        let failed = tokio::time::timeout(Duration::from_secs(20), call(&channel)).await;
        let status = failed.expect("the keepalive ended the call").unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("keep-alive timed out"), "{status:?}");
        assert!(status.message().contains("300ms"), "{status:?}");
        held.abort();
    }

    /// A TCP proxy to `target` that forwards both ways and reports, for each read of the client's
    /// bytes, the HTTP/2 frames that began in it: (type, flags).
    async fn frame_watching_proxy(target: String) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<(u8, u8)>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let server = tokio::net::TcpStream::connect(target).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
            // The client's bytes: the 24-byte preface, then frames (a 9-byte header each).
            let (mut buf, mut skip, mut chunk) = (Vec::new(), 24usize, vec![0u8; 65536]);
            while let Ok(n) = client_read.read(&mut chunk).await {
                if n == 0 || server_write.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let mut frames = Vec::new();
                loop {
                    // The rest of the preface or of a frame's payload, then the next header.
                    let k = skip.min(buf.len());
                    buf.drain(..k);
                    skip -= k;
                    if skip > 0 || buf.len() < 9 {
                        break;
                    }
                    frames.push((buf[3], buf[4]));
                    skip = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
                    buf.drain(..9);
                }
                let _ = tx.send(frames);
            }
        });
        (address, rx)
    }

    const HEADERS: u8 = 1;
    const PING: u8 = 6;

    /// The frames of the next write that held a HEADERS frame (a call's).
    async fn headers_written(writes: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<(u8, u8)>>) -> Vec<(u8, u8)> {
        loop {
            let frames = tokio::time::timeout(Duration::from_secs(10), writes.recv())
                .await
                .expect("a call's write")
                .unwrap();
            if frames.iter().any(|f| f.0 == HEADERS) {
                return frames;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_connection_gets_no_ping_and_the_next_call_goes_out_with_one() {
        let server = Echo::start().await;
        let (address, mut writes) = frame_watching_proxy(server.address.clone()).await;
        let mut options = ConnectionOptions::default();
        options.channel.http2_keepalive = Some(crate::policy::Http2Keepalive {
            interval: Duration::from_millis(300),
            timeout: Duration::from_secs(10),
        });
        let channel = get_grpc_channel_on(&Handle::current(), &Address::parse(&address).unwrap(), &options).unwrap();
        call(&channel).await.unwrap();
        headers_written(&mut writes).await;
        // Idle for several intervals: no PING (no call is in progress).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut before = Vec::new();
        while let Ok(frames) = writes.try_recv() {
            before.extend(frames);
        }
        assert!(!before.contains(&(PING, 0)), "a PING while idle: {before:?}");
        // The next call, on a connection that has read nothing for an interval: its PING goes out
        // in the same write as its HEADERS (hyper's client did the same).
        call(&channel).await.unwrap();
        let with_headers = headers_written(&mut writes).await;
        assert!(with_headers.contains(&(PING, 0)), "{with_headers:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_is_closed_once_its_channel_is_dropped_and_its_calls_are_done() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (ended, mut ended_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut connection = h2::server::handshake(tcp).await.unwrap();
            while let Some(Ok((_, mut respond))) = connection.accept().await {
                let head = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "0")
                    .body(())
                    .unwrap();
                respond.send_response(head, true).unwrap();
            }
            // The client ended the connection.
            let _ = ended.send(());
        });
        let channel = channel_to(&address);
        let answer = call(&channel).await.unwrap_err();
        assert!(answer.message().contains("no response message"), "{answer:?}");
        drop(channel);
        tokio::time::timeout(Duration::from_secs(10), ended_rx.recv())
            .await
            .expect("the connection was closed")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_given_up_resets_its_stream_with_cancel_and_leaves_the_connection_to_the_next() {
        // A server that holds the first call unanswered and reports how its stream ends, and
        // answers the calls after it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (arrived, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel();
        let (reset, mut reset_rx) = tokio::sync::mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (arrived, reset) = (arrived.clone(), reset.clone());
                tokio::spawn(async move {
                    let mut connection = h2::server::handshake(tcp).await.unwrap();
                    let mut first = true;
                    while let Some(Ok((request, mut respond))) = connection.accept().await {
                        if std::mem::take(&mut first) {
                            let _ = arrived.send(());
                            let reset = reset.clone();
                            tokio::spawn(async move {
                                let _body = request;
                                let reason = std::future::poll_fn(|cx| respond.poll_reset(cx)).await;
                                let _ = reset.send(reason);
                            });
                            continue;
                        }
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut stream = respond.send_response(head, false).unwrap();
                        stream.send_data(Bytes::from_static(b"\0\0\0\0\x02ok"), false).unwrap();
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        stream.send_trailers(trailers).unwrap();
                    }
                });
            }
        });
        let channel = channel_to(&address);
        let given_up = tokio::spawn({
            let channel = channel.clone();
            async move { call(&channel).await }
        });
        tokio::time::timeout(Duration::from_secs(10), arrived_rx.recv())
            .await
            .expect("the first call reached the server")
            .unwrap();
        // Given up (a deadline or a cancel drops the call the same way).
        given_up.abort();
        assert!(given_up.await.unwrap_err().is_cancelled());
        let reason = tokio::time::timeout(Duration::from_secs(10), reset_rx.recv())
            .await
            .expect("the server saw the stream end")
            .unwrap();
        assert_eq!(reason.unwrap(), h2::Reason::CANCEL);
        // The connection goes on: the next call is answered on it.
        assert_eq!(&call(&channel).await.unwrap()[..], b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_attempt_fails_its_calls_and_the_next_call_tries_again() {
        // A port nothing listens on (bound, then closed), then a server on it.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = free.local_addr().unwrap();
        drop(free);
        let channel = channel_to(&address.to_string());
        let refused = call(&channel).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        assert!(refused.message().contains("onnect"), "{refused:?}");
        let server = Echo::on(TcpListener::bind(address).await.unwrap());
        call(&channel).await.unwrap();
        assert_eq!(server.accepted(), 1);
    }
}
