//! Real gRPC servers that implement jina 3.1's three services, for libjina_net's Rust, C, C++ and Go
//! tests, the demo and the benchmarks:
//!
//! - `echo`: a worker that answers each data request with the request itself, its `routes` extended by
//!   a `RouteProto{executor: <name>}` (so a test sees which replica answered), and trailing metadata
//!   `replica: <name>`, `endpoint: <endpoint metadata received>`, `request-count: <n>`.
//! - `error`: a worker whose executor raises: gRPC OK, `header.status.code = ERROR` with the exception
//!   filled, trailing `is-error: true` (what jina 3.1 workers do).
//! - `unavailable`: every call fails with `UNAVAILABLE`; `flaky:N`: the first N calls do, then echo.
//! - `slow:MS`: echo after MS milliseconds.
//! - `head`: a head like jina's `HeadRuntime`: ACTIVATE / DEACTIVATE add and remove workers of its
//!   deployment (it routes with libjina_net's own pool), data requests are forwarded (`/search` → ALL,
//!   `/index` → ANY, else the configured polling), with no worker it answers `UNKNOWN`.
//!
//! Every server records the control requests and the `endpoint` metadata it received, and the HTTP/2
//! headers of every request (`Record::headers`). The echo and error workers also answer each custom
//! request metadata entry `k: v` (not a gRPC, HTTP/2 or `endpoint` header) with a trailing
//! `seen-k: v`, so a client in another process can see what arrived.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jina_net::proto::jina::jina_control_request_rpc_server::{JinaControlRequestRpc, JinaControlRequestRpcServer};
use jina_net::proto::jina::jina_data_request_rpc_server::{JinaDataRequestRpc, JinaDataRequestRpcServer};
use jina_net::proto::jina::jina_single_data_request_rpc_server::{
    JinaSingleDataRequestRpc, JinaSingleDataRequestRpcServer,
};
use jina_net::proto::jina::{status_proto::ExceptionProto, RouteProto};
use jina_net::proto::{Command, ControlRequestProto, DataRequestListProto, DataRequestProto, StatusCode, StatusProto};
use jina_net::{ConnectionPool, Polling, Request as JinaRequest, SendOptions, To};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

mod counting;
mod headers;
mod hostile;
pub mod pki;
mod trailers;
pub use headers::{HeadersLayer, SeenHeaders};
pub use hostile::Hostile;
pub use trailers::{Trailers, TrailersLayer};

/// What a server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Echo worker.
    Echo,
    /// Worker whose executor raises (in-band error).
    Error,
    /// Every call fails with UNAVAILABLE.
    Unavailable,
    /// The first N calls fail with UNAVAILABLE, then echo.
    Flaky(usize),
    /// Echo after a delay.
    Slow(Duration),
    /// A peer that breaks the protocol or never answers (see [`Hostile`]).
    Hostile(Hostile),
    /// A head routing to the workers registered with it.
    Head {
        /// The deployment ACTIVATE registers workers into.
        deployment: String,
        /// Polling for endpoints other than `/search` and `/index`.
        polling: Polling,
    },
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        let (kind, arg) = s.split_once(':').map_or((s, None), |(k, a)| (k, Some(a)));
        let number = |a: Option<&str>| {
            a.and_then(|a| a.parse::<u64>().ok())
                .ok_or_else(|| format!("role {s:?} needs a number"))
        };
        Ok(match kind {
            "echo" => Role::Echo,
            "error" => Role::Error,
            "unavailable" => Role::Unavailable,
            "flaky" => Role::Flaky(number(arg)? as usize),
            "slow" => Role::Slow(Duration::from_millis(number(arg)?)),
            "head" => Role::Head {
                deployment: arg.filter(|a| !a.is_empty()).unwrap_or("worker").to_owned(),
                polling: Polling::Any,
            },
            "hostile" => Role::Hostile(arg.unwrap_or("").parse()?),
            "head-all" => Role::Head {
                deployment: arg.filter(|a| !a.is_empty()).unwrap_or("worker").to_owned(),
                polling: Polling::All,
            },
            _ => return Err(format!("unknown role {s:?} (echo, error, unavailable, flaky:N, slow:MS, hostile:KIND, head[:deployment], head-all[:deployment])")),
        })
    }
}

/// What a server saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Calls received, all methods.
    pub calls: AtomicUsize,
    /// Control requests received, in order.
    pub control: Mutex<Vec<ControlRequestProto>>,
    /// `(method, endpoint metadata)` of each data call.
    pub data_calls: Mutex<Vec<(&'static str, Option<String>)>>,
    /// Data calls running now.
    pub in_flight: AtomicUsize,
    /// The most data calls that ran at once.
    pub max_in_flight: AtomicUsize,
    /// Data calls whose handler ran to its end (a call the client cancelled, e.g. a hedge that
    /// lost, has its handler dropped and is not counted).
    pub completed: AtomicUsize,
    /// `(path, HTTP/2 request headers)` of every call, in arrival order.
    pub headers: SeenHeaders,
    /// Bytes read from and written to the TCP connections (the TCP payload: HTTP/2 and TLS framing
    /// included).
    pub bytes_read: std::sync::atomic::AtomicU64,
    pub bytes_written: std::sync::atomic::AtomicU64,
}

/// Counts a data call in flight while it lives.
struct Running<'a>(&'a Record);

impl<'a> Running<'a> {
    fn new(record: &'a Record) -> Self {
        let n = record.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        record.max_in_flight.fetch_max(n, Ordering::SeqCst);
        Running(record)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct State {
    name: String,
    role: Role,
    record: Arc<Record>,
    /// The head's routing (a libjina_net pool).
    pool: Option<ConnectionPool>,
}

#[derive(Clone)]
struct Service(Arc<State>);

/// One data call as the handlers pass it on.
struct DataCall {
    requests: Vec<DataRequestProto>,
    endpoint: Option<String>,
    /// Its custom metadata as `seen-*` trailers.
    seen: Vec<(String, String)>,
}

fn trailers(pairs: &[(&'static str, String)], seen: &[(String, String)]) -> Trailers {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            map.insert(*k, v);
        }
    }
    for (k, v) in seen {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            map.append(k, v);
        }
    }
    Trailers(map)
}

/// The custom metadata of a request, as `seen-<key>` trailers (values as on the wire).
fn seen_metadata<T>(request: &Request<T>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in request.metadata().clone().into_headers().iter() {
        let k = key.as_str();
        if k == "endpoint"
            || k.starts_with("grpc-")
            || ["user-agent", "te", "content-type", "content-length", "accept-encoding"].contains(&k)
        {
            continue;
        }
        if let Ok(v) = value.to_str() {
            out.push((format!("seen-{k}"), v.to_owned()));
        }
    }
    out
}

fn endpoint_of<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("endpoint")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Service {
    async fn before_call(&self) -> Result<(), Status> {
        let n = self.0.record.calls.fetch_add(1, Ordering::SeqCst);
        match &self.0.role {
            Role::Unavailable => Err(Status::unavailable(format!("{} is unavailable", self.0.name))),
            Role::Flaky(k) if n < *k => Err(Status::unavailable(format!(
                "{} is flaky (call {})",
                self.0.name,
                n + 1
            ))),
            Role::Slow(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn data(&self, method: &'static str, call: DataCall) -> Result<Response<DataRequestProto>, Status> {
        let _running = Running::new(&self.0.record);
        let result = self.data_inner(method, call).await;
        self.0.record.completed.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn data_inner(&self, method: &'static str, call: DataCall) -> Result<Response<DataRequestProto>, Status> {
        let DataCall {
            mut requests,
            endpoint,
            seen,
        } = call;
        self.before_call().await?;
        self.0
            .record
            .data_calls
            .lock()
            .unwrap()
            .push((method, endpoint.clone()));
        let count = requests.len();
        if let Some(pool) = &self.0.pool {
            return self.forward(pool, requests, endpoint).await;
        }
        if requests.is_empty() {
            return Err(Status::invalid_argument("empty request list"));
        }
        let mut response = requests.swap_remove(0);
        let mut extra = vec![
            ("replica", self.0.name.clone()),
            ("endpoint", endpoint.unwrap_or_default()),
            ("request-count", count.to_string()),
        ];
        if self.0.role == Role::Error {
            let header = response.header.get_or_insert_with(Default::default);
            header.status = Some(StatusProto {
                code: StatusCode::Error as i32,
                description: format!("ValueError('{} raised')", self.0.name),
                exception: Some(ExceptionProto {
                    name: "ValueError".into(),
                    args: vec![format!("{} raised", self.0.name)],
                    stacks: vec!["Traceback (most recent call last):\n".into()],
                    executor: self.0.name.clone(),
                }),
            });
            extra.push(("is-error", "true".into()));
        }
        response.routes.push(RouteProto {
            executor: self.0.name.clone(),
            ..Default::default()
        });
        let mut response = Response::new(response);
        response.extensions_mut().insert(trailers(&extra, &seen));
        Ok(response)
    }

    async fn forward(
        &self,
        pool: &ConnectionPool,
        requests: Vec<DataRequestProto>,
        endpoint: Option<String>,
    ) -> Result<Response<DataRequestProto>, Status> {
        let Role::Head { deployment, polling } = &self.0.role else {
            unreachable!()
        };
        let polling = match endpoint.as_deref() {
            Some("/search") => Polling::All,
            Some("/index") => Polling::Any,
            _ => *polling,
        };
        let requests: Vec<JinaRequest> = requests.iter().map(JinaRequest::from).collect();
        let send = pool
            .send_requests(
                &requests,
                deployment,
                To::jina(false, None, polling),
                &SendOptions {
                    endpoint: endpoint.as_deref(),
                    ..Default::default()
                },
            )
            .map_err(|e| Status::unknown(format!("{} did not receive a response: {e}", self.0.name)))?;
        let mut merged: Option<DataRequestProto> = None;
        let mut replicas = Vec::new();
        for target in send.await {
            let response = target
                .result
                .map_err(|e| Status::unknown(format!("{} did not receive a response: {e}", self.0.name)))?;
            if let Some(r) = response.trailers.get("replica").and_then(|v| v.to_str().ok()) {
                replicas.push(r.to_owned());
            }
            let decoded = DataRequestProto::decode(response.body).map_err(|e| Status::internal(e.to_string()))?;
            match &mut merged {
                None => merged = Some(decoded),
                Some(m) => m.routes.extend(decoded.routes),
            }
        }
        let mut merged = merged.ok_or_else(|| Status::unknown("no response"))?;
        merged.routes.push(RouteProto {
            executor: self.0.name.clone(),
            ..Default::default()
        });
        let mut response = Response::new(merged);
        response.extensions_mut().insert(trailers(
            &[("replica", replicas.join(",")), ("head", self.0.name.clone())],
            &[],
        ));
        Ok(response)
    }
}

#[tonic::async_trait]
impl JinaSingleDataRequestRpc for Service {
    async fn process_single_data(
        &self,
        request: Request<DataRequestProto>,
    ) -> Result<Response<DataRequestProto>, Status> {
        let call = DataCall {
            endpoint: endpoint_of(&request),
            seen: seen_metadata(&request),
            requests: vec![request.into_inner()],
        };
        self.data("process_single_data", call).await
    }
}

#[tonic::async_trait]
impl JinaDataRequestRpc for Service {
    async fn process_data(&self, request: Request<DataRequestListProto>) -> Result<Response<DataRequestProto>, Status> {
        let call = DataCall {
            endpoint: endpoint_of(&request),
            seen: seen_metadata(&request),
            requests: request.into_inner().requests,
        };
        self.data("process_data", call).await
    }
}

#[tonic::async_trait]
impl JinaControlRequestRpc for Service {
    async fn process_control(
        &self,
        request: Request<ControlRequestProto>,
    ) -> Result<Response<ControlRequestProto>, Status> {
        self.before_call().await?;
        let request = request.into_inner();
        self.0.record.control.lock().unwrap().push(request.clone());
        if let (Some(pool), Role::Head { deployment, .. }) = (&self.0.pool, &self.0.role) {
            for entity in &request.related_entities {
                let address = format!("{}:{}", entity.address, entity.port);
                let result = match Command::try_from(request.command) {
                    Ok(Command::Activate) => pool
                        .add_connection(deployment, &address, false, entity.shard_id)
                        .map(|_| ()),
                    Ok(Command::Deactivate) => pool
                        .remove_connection(deployment, &address, false, entity.shard_id)
                        .map(|_| ()),
                    _ => Ok(()),
                };
                result.map_err(|e| Status::invalid_argument(e.to_string()))?;
            }
        }
        Ok(Response::new(request))
    }
}

/// How a test server serves, beyond its role.
#[derive(Default)]
pub struct ServeOptions {
    /// TLS (with `client_ca_root` it requires client certificates).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Compress responses with this encoding when the client accepts it (requests in gzip and
    /// deflate are always accepted).
    pub send_compressed: Option<tonic::codec::CompressionEncoding>,
}

/// A running test server.
pub struct TestServer {
    /// The address it listens on (always loopback; `0.0.0.0:0` for a Unix socket server).
    pub addr: SocketAddr,
    /// The socket path of a Unix socket server.
    pub unix_path: Option<std::path::PathBuf>,
    /// Its name (what `replica` trailers and routes say).
    pub name: String,
    /// What it saw.
    pub record: Arc<Record>,
    pool: Option<ConnectionPool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1:port` (0 = any free port) on the current tokio runtime.
    pub async fn start(name: &str, role: Role, port: u16) -> std::io::Result<TestServer> {
        Self::start_at(name, role, SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    /// Starts a server on a loopback address (`127.x.y.z:port`; other addresses are refused: tests
    /// never listen outside the machine).
    pub async fn start_at(name: &str, role: Role, addr: SocketAddr) -> std::io::Result<TestServer> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "test servers listen on loopback only",
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        Ok(Self::serve(name, role, listener))
    }

    /// Serves on an already bound listener.
    pub fn serve(name: &str, role: Role, listener: TcpListener) -> TestServer {
        Self::serve_with(name, role, listener, ServeOptions::default()).expect("plaintext server needs no TLS setup")
    }

    /// Starts a TLS server on `127.0.0.1:port` with a PEM certificate chain and key.
    pub async fn start_tls(
        name: &str,
        role: Role,
        port: u16,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let tls =
            tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert_pem, key_pem));
        let options = ServeOptions {
            tls: Some(tls),
            ..Default::default()
        };
        Self::serve_with(name, role, listener, options).map_err(std::io::Error::other)
    }

    /// Serves on `127.0.0.1:port` (0 = any free port) as `options` say.
    pub async fn start_with(name: &str, role: Role, port: u16, options: ServeOptions) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Self::serve_with(name, role, listener, options).map_err(std::io::Error::other)
    }

    /// Serves plaintext on a Unix domain socket at `path` (which must not exist yet).
    pub fn start_unix(name: &str, role: Role, path: &std::path::Path) -> std::io::Result<TestServer> {
        let listener = tokio::net::UnixListener::bind(path)?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let mut server = Self::serve_incoming(name, role, incoming, ServeOptions::default(), Arc::default())
            .map_err(std::io::Error::other)?;
        server.addr = SocketAddr::from(([0, 0, 0, 0], 0));
        server.unix_path = Some(path.to_owned());
        Ok(server)
    }

    fn serve_with(
        name: &str,
        role: Role,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<TestServer, tonic::transport::Error> {
        let addr = listener.local_addr().expect("bound listener has an address");
        if let Role::Hostile(kind) = role {
            let record = Arc::new(Record::default());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(hostile::serve(listener, kind, record.clone(), stopped));
            return Ok(TestServer {
                addr,
                unix_path: None,
                name: name.to_owned(),
                record,
                pool: None,
                stop: Some(stop),
                task: Some(task),
            });
        }
        // Responses go out at once (no Nagle delay): tonic's own `tcp_nodelay` does not apply to
        // connections accepted from a stream we hand it.
        let record = Arc::new(Record::default());
        let counted = record.clone();
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            move |stream| {
                stream.map(|s| {
                    let _ = s.set_nodelay(true);
                    counting::Counted::new(s, counted.clone())
                })
            },
        );
        let mut server = Self::serve_incoming(name, role, incoming, options, record)?;
        server.addr = addr;
        Ok(server)
    }

    fn serve_incoming<S, IO>(
        name: &str,
        role: Role,
        incoming: S,
        options: ServeOptions,
        record: Arc<Record>,
    ) -> Result<TestServer, tonic::transport::Error>
    where
        S: tokio_stream::Stream<Item = std::io::Result<IO>> + Send + 'static,
        IO: tonic::transport::server::Connected + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tonic::codec::CompressionEncoding::{Deflate, Gzip};
        let pool = matches!(role, Role::Head { .. }).then(ConnectionPool::default);
        let service = Service(Arc::new(State {
            name: name.to_owned(),
            role,
            record: record.clone(),
            pool: pool.clone(),
        }));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = options.tls {
            builder = builder.tls_config(tls)?;
        }
        let mut single = JinaSingleDataRequestRpcServer::new(service.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
            .accept_compressed(Gzip)
            .accept_compressed(Deflate);
        let mut batch = JinaDataRequestRpcServer::new(service.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
            .accept_compressed(Gzip)
            .accept_compressed(Deflate);
        let mut control = JinaControlRequestRpcServer::new(service)
            .accept_compressed(Gzip)
            .accept_compressed(Deflate);
        if let Some(encoding) = options.send_compressed {
            single = single.send_compressed(encoding);
            batch = batch.send_compressed(encoding);
            control = control.send_compressed(encoding);
        }
        let router = builder
            .layer(HeadersLayer(record.headers.clone()))
            .layer(TrailersLayer)
            .add_service(single)
            .add_service(batch)
            .add_service(control);
        let task = tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TestServer {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            unix_path: None,
            name: name.to_owned(),
            record,
            pool,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `127.0.0.1:port`, or `unix:<path>` for a Unix socket server.
    pub fn address(&self) -> String {
        match &self.unix_path {
            Some(path) => format!("unix:{}", path.display()),
            None => self.addr.to_string(),
        }
    }

    /// The head's routing table (heads only).
    pub fn head_pool(&self) -> Option<&ConnectionPool> {
        self.pool.as_ref()
    }

    /// Stops the server and waits until its listener is closed. Connections in progress are dropped.
    pub async fn stop(mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
        if let Some(pool) = &self.pool {
            pool.close();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
