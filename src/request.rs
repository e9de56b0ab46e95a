//! What a send carries: the kind of request and its serialized bytes, and the payload that goes on the
//! wire (one `DataRequestProto`, a `DataRequestListProto` framed from several, or a `ControlRequestProto`).

use std::sync::Arc;

use bytes::{BufMut, Bytes};
use prost::Message;

use crate::error::{Error, Result};
use crate::proto::{self, paths};
use crate::wire::{put_varint, varint_len};

/// The two kinds of request a Jina runtime accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A serialized `jina.DataRequestProto`.
    Data,
    /// A serialized `jina.ControlRequestProto`.
    Control,
}

/// One serialized request and its kind. Cloning is cheap (the bytes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The kind of message in `bytes`.
    pub kind: RequestKind,
    /// The serialized message.
    pub bytes: Bytes,
}

impl Request {
    /// A data request from already serialized `DataRequestProto` bytes (forwarded as they are).
    pub fn data(bytes: impl Into<Bytes>) -> Request {
        Request {
            kind: RequestKind::Data,
            bytes: bytes.into(),
        }
    }

    /// A control request from already serialized `ControlRequestProto` bytes.
    pub fn control(bytes: impl Into<Bytes>) -> Request {
        Request {
            kind: RequestKind::Control,
            bytes: bytes.into(),
        }
    }

    /// Checks the bytes are well-formed protobuf (top-level structure only; no message is built).
    pub fn check(&self) -> Result<()> {
        crate::wire::check_message(&self.bytes).map_err(|reason| {
            let kind = match self.kind {
                RequestKind::Data => "data",
                RequestKind::Control => "control",
            };
            Error::InvalidRequest(format!("{kind} request bytes are not protobuf: {reason}"))
        })
    }
}

impl From<&proto::DataRequestProto> for Request {
    fn from(message: &proto::DataRequestProto) -> Request {
        Request::data(message.encode_to_vec())
    }
}

impl From<&proto::ControlRequestProto> for Request {
    fn from(message: &proto::ControlRequestProto) -> Request {
        Request::control(message.encode_to_vec())
    }
}

/// The message body of one call, ready to be written (and re-written on retry) without copying.
#[derive(Debug, Clone)]
pub struct Payload {
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Single(Bytes),
    /// Several `DataRequestProto`s sent as one `DataRequestListProto { repeated requests = 1; }`:
    /// framed while being written, so the requests are not copied into a list first.
    List(Arc<[Bytes]>),
    /// The message compressed, with the name of its `grpc-encoding` (`gzip`, `deflate`).
    Compressed(&'static str, Bytes),
}

impl Payload {
    /// Builds the payload for `requests` and the method it goes to: one data request goes to
    /// `process_single_data`, several to `process_data`, a control request to `process_control`.
    pub fn new(requests: &[Request]) -> Result<(Payload, Method)> {
        match requests {
            [] => Err(Error::InvalidRequest("no request to send".into())),
            [one] => Ok((
                Payload {
                    body: Body::Single(one.bytes.clone()),
                },
                match one.kind {
                    RequestKind::Data => Method::ProcessSingleData,
                    RequestKind::Control => Method::ProcessControl,
                },
            )),
            many => {
                if many.iter().any(|r| r.kind == RequestKind::Control) {
                    return Err(Error::InvalidRequest(
                        "control requests are sent one at a time; several requests must all be data requests".into(),
                    ));
                }
                let parts: Arc<[Bytes]> = many.iter().map(|r| r.bytes.clone()).collect();
                Ok((
                    Payload {
                        body: Body::List(parts),
                    },
                    Method::ProcessData,
                ))
            }
        }
    }

    /// The payload compressed as `encoding` (a `grpc-encoding` name) into `bytes`.
    pub(crate) fn compressed(encoding: &'static str, bytes: Bytes) -> Payload {
        Payload {
            body: Body::Compressed(encoding, bytes),
        }
    }

    /// The `grpc-encoding` of a compressed payload.
    pub(crate) fn encoding(&self) -> Option<&'static str> {
        match &self.body {
            Body::Compressed(e, _) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        match &self.body {
            Body::Single(b) | Body::Compressed(_, b) => b.len(),
            Body::List(parts) => parts.iter().map(|p| 1 + varint_len(p.len() as u64) + p.len()).sum(),
        }
    }

    /// The payload's bytes as chunks, without copying them (a list's framing bytes are made here).
    pub(crate) fn push_chunks(&self, chunks: &mut std::collections::VecDeque<Bytes>) {
        match &self.body {
            Body::Single(b) | Body::Compressed(_, b) => chunks.push_back(b.clone()),
            Body::List(parts) => {
                for part in parts.iter() {
                    let mut framing = Vec::with_capacity(11);
                    framing.push(0x0a); // field 1, length-delimited
                    put_varint(&mut framing, part.len() as u64);
                    chunks.push_back(Bytes::from(framing));
                    chunks.push_back(part.clone());
                }
            }
        }
    }

    pub(crate) fn write_to(&self, dst: &mut impl BufMut) {
        match &self.body {
            Body::Single(b) | Body::Compressed(_, b) => dst.put_slice(b),
            Body::List(parts) => {
                for part in parts.iter() {
                    dst.put_u8(0x0a); // field 1, length-delimited
                    put_varint(dst, part.len() as u64);
                    dst.put_slice(part);
                }
            }
        }
    }
}

/// The gRPC method a payload is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `jina.JinaSingleDataRequestRPC/process_single_data`
    ProcessSingleData,
    /// `jina.JinaDataRequestRPC/process_data`
    ProcessData,
    /// `jina.JinaControlRequestRPC/process_control`
    ProcessControl,
}

impl Method {
    /// The full gRPC path.
    pub fn path(self) -> &'static str {
        match self {
            Method::ProcessSingleData => paths::PROCESS_SINGLE_DATA,
            Method::ProcessData => paths::PROCESS_DATA,
            Method::ProcessControl => paths::PROCESS_CONTROL,
        }
    }

    /// Whether the `endpoint` metadata is attached (data requests only, as jina does).
    pub fn carries_endpoint(self) -> bool {
        self != Method::ProcessControl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_framing_matches_prost() {
        let a = proto::DataRequestProto {
            header: Some(proto::HeaderProto {
                request_id: "a".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = a.clone();
        b.header.as_mut().unwrap().request_id = "b".repeat(300);
        let (payload, method) = Payload::new(&[Request::from(&a), Request::from(&b)]).unwrap();
        assert_eq!(method, Method::ProcessData);
        let mut out = Vec::new();
        payload.write_to(&mut out);
        assert_eq!(out.len(), payload.encoded_len());
        let expected = proto::DataRequestListProto { requests: vec![a, b] }.encode_to_vec();
        assert_eq!(out, expected);
        let mut chunks = std::collections::VecDeque::new();
        payload.push_chunks(&mut chunks);
        assert_eq!(
            chunks.iter().flat_map(|c| c.iter().copied()).collect::<Vec<u8>>(),
            expected
        );
    }

    #[test]
    fn methods_and_bad_mixes() {
        assert_eq!(
            Payload::new(&[Request::data(vec![])]).unwrap().1,
            Method::ProcessSingleData
        );
        assert_eq!(
            Payload::new(&[Request::control(vec![])]).unwrap().1,
            Method::ProcessControl
        );
        assert!(Payload::new(&[]).is_err());
        assert!(Payload::new(&[Request::control(vec![]), Request::data(vec![])]).is_err());
    }
}
