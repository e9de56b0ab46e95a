//! One-shot sends to an address, without a pool: jina's `send_request_sync`, `send_requests_sync`
//! and `send_request_async`.

use std::sync::Arc;
use std::time::Duration;

use crate::address::Address;
use crate::error::{Error, Result};
use crate::policy::{ChannelOptions, ConnectionOptions, RetryPolicy, TlsIdentity, TlsOptions};
use crate::replica::{Replica, Response};
use crate::request::Request;
use crate::runtime;
use crate::transport::CallOptions;

/// jina's default timeout of the blocking helpers.
pub const SYNC_DEFAULT_TIMEOUT: Duration = Duration::from_secs(100);
/// jina's default timeout of `send_request_async`.
pub const ASYNC_DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of a one-shot send.
#[derive(Debug, Clone, Default)]
pub struct OneShotOptions {
    /// Deadline of the whole send; `None` = the helper's default (100 s sync, 1 s async).
    pub timeout: Option<Duration>,
    /// Use TLS even without an `https://` / `grpcs://` address.
    pub tls: bool,
    /// PEM root certificates to trust instead of the system roots.
    pub root_certificates_pem: Option<Vec<u8>>,
    /// The client's identity for mutual TLS.
    pub identity: Option<TlsIdentity>,
    /// The name the server's certificate must carry instead of the target's host.
    pub tls_server_name: Option<String>,
    /// The `endpoint` metadata of data requests.
    pub endpoint: Option<String>,
    /// Channel options (default: jina's unlimited message sizes).
    pub channel: ChannelOptions,
}

fn open(target: &str, options: &OneShotOptions) -> Result<Arc<Replica>> {
    let connection = ConnectionOptions {
        channel: options.channel.clone(),
        tls: TlsOptions {
            force: options.tls,
            root_certificates_pem: options.root_certificates_pem.clone(),
            identity: options.identity.clone(),
            server_name: options.tls_server_name.clone(),
        },
        ..Default::default()
    };
    Replica::open_on(&runtime::handle()?, Address::parse(target)?, &connection)
}

/// Sends one request to `target` and blocks until the response: up to 3 attempts on `UNAVAILABLE`,
/// each on a fresh channel. Must not be called from an async context.
pub fn send_request_sync(request: Request, target: &str, options: &OneShotOptions) -> Result<Response> {
    send_requests_sync(vec![request], target, options)
}

/// Sends several data requests to `target` in one `process_data` call (one request goes to
/// `process_single_data`), blocking, with the retries of [`send_request_sync`].
pub fn send_requests_sync(requests: Vec<Request>, target: &str, options: &OneShotOptions) -> Result<Response> {
    let target = target.to_owned();
    let options = options.clone();
    runtime::block_on(async move { send_with_fresh_channels(&requests, &target, &options).await })?
}

/// The async form of [`send_requests_sync`] (same retries, each on a fresh channel).
pub async fn send_with_fresh_channels(
    requests: &[Request],
    target: &str,
    options: &OneShotOptions,
) -> Result<Response> {
    let policy = RetryPolicy::jina();
    let budget = policy.attempt_budget(1);
    let call = CallOptions::new(
        options.endpoint.as_deref(),
        Some(options.timeout.unwrap_or(SYNC_DEFAULT_TIMEOUT)),
    )?;
    let mut attempt = 1;
    loop {
        let connection = open(target, options)?;
        match connection.send_once(requests, &call).await {
            Err(Error::Rpc(mut e)) if policy.should_retry(e.code, attempt, budget) => {
                tracing::debug!(
                    target,
                    attempt,
                    "one-shot send failed with {}, retrying on a fresh channel",
                    crate::error::code_name(e.code)
                );
                e.attempts = attempt;
                attempt += 1;
            }
            Err(Error::Rpc(mut e)) => {
                e.attempts = attempt;
                return Err(Error::Rpc(e));
            }
            other => return other,
        }
    }
}

/// Sends one request to `target` and awaits the response: one attempt, timeout 1 s by default.
pub async fn send_request_async(request: Request, target: &str, options: &OneShotOptions) -> Result<Response> {
    let connection = open(target, options)?;
    let call = CallOptions::new(
        options.endpoint.as_deref(),
        Some(options.timeout.unwrap_or(ASYNC_DEFAULT_TIMEOUT)),
    )?;
    connection.send_once(&[request], &call).await
}
