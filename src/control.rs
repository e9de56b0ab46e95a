//! The control plane: ControlRequests that register workers with a head (ACTIVATE) and take them out
//! again (DEACTIVATE), as jina 3.1's `activate_worker` / `deactivate_worker` send them.

use std::time::Duration;

use prost::Message;

use crate::error::{Error, Result};
use crate::oneshot::{send_request_async, send_request_sync, OneShotOptions, SYNC_DEFAULT_TIMEOUT};
use crate::proto::{Command, ControlRequestProto, HeaderProto, RelatedEntity};
use crate::replica::Response;
use crate::request::Request;

/// A control request with a random `header.request_id` (32 hex digits, like jina's `random_identity`).
pub fn control_request(command: Command) -> ControlRequestProto {
    ControlRequestProto {
        header: Some(HeaderProto {
            request_id: uuid::Uuid::new_v4().simple().to_string(),
            ..Default::default()
        }),
        command: command as i32,
        related_entities: Vec::new(),
    }
}

/// ACTIVATE or DEACTIVATE with one `RelatedEntity{id: "worker", address, port, shard_id}`;
/// `shard_id` is present on the wire only when given.
pub fn worker_control_request(
    command: Command,
    worker_host: &str,
    worker_port: u16,
    shard_id: Option<u32>,
) -> ControlRequestProto {
    let mut request = control_request(command);
    request.related_entities.push(RelatedEntity {
        id: "worker".to_owned(),
        address: worker_host.to_owned(),
        port: u32::from(worker_port),
        shard_id,
    });
    request
}

fn decode_echo(response: Response) -> Result<ControlRequestProto> {
    ControlRequestProto::decode(response.body.as_ref()).map_err(|e| Error::InvalidResponse {
        address: response.address.to_string(),
        reason: e.to_string(),
    })
}

/// Registers the worker at `worker_host:worker_port` with the head at `target_head`; returns the
/// request the head echoed. One attempt, timeout 1 s (jina's `send_request_async`).
pub async fn activate_worker(
    worker_host: &str,
    worker_port: u16,
    target_head: &str,
    shard_id: Option<u32>,
) -> Result<ControlRequestProto> {
    let request = worker_control_request(Command::Activate, worker_host, worker_port, shard_id);
    decode_echo(send_request_async(Request::from(&request), target_head, &OneShotOptions::default()).await?)
}

/// Blocking ACTIVATE: timeout 100 s by default, up to 3 attempts on `UNAVAILABLE`.
pub fn activate_worker_sync(
    worker_host: &str,
    worker_port: u16,
    target_head: &str,
    timeout: Option<Duration>,
    shard_id: Option<u32>,
) -> Result<ControlRequestProto> {
    let request = worker_control_request(Command::Activate, worker_host, worker_port, shard_id);
    let options = OneShotOptions {
        timeout: Some(timeout.unwrap_or(SYNC_DEFAULT_TIMEOUT)),
        ..Default::default()
    };
    decode_echo(send_request_sync(Request::from(&request), target_head, &options)?)
}

/// Takes the worker out of the head at `target_head`; returns the echoed request.
pub async fn deactivate_worker(
    worker_host: &str,
    worker_port: u16,
    target_head: &str,
    shard_id: Option<u32>,
) -> Result<ControlRequestProto> {
    let request = worker_control_request(Command::Deactivate, worker_host, worker_port, shard_id);
    decode_echo(send_request_async(Request::from(&request), target_head, &OneShotOptions::default()).await?)
}
