//! `jina_net_request_builder_*` and `jina_net_control_request_build`: the bytes decode with prost to
//! the message asked for, bad input gets its code and message, and real test servers (an echo worker,
//! a head) answer the bytes.

mod common;

use std::ffi::c_char;
use std::ptr;

use common::c_abi::*;
use common::*;
use jina_net::ffi::args::JINA_NET_NO_SHARD;
use jina_net::ffi::oneshot::*;
use jina_net::ffi::request_builder::*;
use jina_net::ffi::response::*;
use jina_net::ffi::result::jina_net_result::*;
use jina_net::proto::docarray::document_proto::Content;
use jina_net::proto::jina::data_request_proto::data_content_proto::Documents;
use jina_net::proto::{Command, ControlRequestProto, DataRequestProto};
use prost::Message;
use prost_types::value::Kind;

struct Builder(*mut jina_net_request_builder);

impl Builder {
    fn new() -> Builder {
        let mut b = ptr::null_mut();
        assert_eq!(unsafe { jina_net_request_builder_new(&mut b) }, JINA_NET_OK);
        assert!(!b.is_null());
        Builder(b)
    }

    /// Builds, copies the bytes out and frees them.
    fn bytes(&self) -> Vec<u8> {
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        assert_eq!(
            unsafe { jina_net_request_builder_build(self.0, &mut data, &mut len) },
            JINA_NET_OK
        );
        let copy = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        unsafe { jina_net_request_bytes_free(data, len) };
        copy
    }

    fn message(&self) -> DataRequestProto {
        DataRequestProto::decode(self.bytes().as_slice()).expect("a DataRequestProto")
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        unsafe { jina_net_request_builder_free(self.0) };
    }
}

fn docs(m: &DataRequestProto) -> Vec<jina_net::proto::docarray::DocumentProto> {
    match m.data.as_ref().and_then(|d| d.documents.clone()) {
        Some(Documents::Docs(a)) => a.docs,
        other => panic!("no docs: {other:?}"),
    }
}

fn control(
    command: u32,
    host: Option<&str>,
    port: u16,
    shard: i64,
) -> (jina_net::ffi::result::jina_net_result, Vec<u8>) {
    let host = host.map(cs);
    let (mut data, mut len) = (ptr::null_mut(), 0usize);
    let r = unsafe {
        jina_net_control_request_build(
            command,
            host.as_ref().map_or(ptr::null(), |h| h.as_ptr()),
            port,
            shard,
            &mut data,
            &mut len,
        )
    };
    let bytes = if r == JINA_NET_OK {
        let copy = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
        unsafe { jina_net_request_bytes_free(data, len) };
        copy
    } else {
        assert!(data.is_null(), "out_data written on failure");
        Vec::new()
    };
    (r, bytes)
}

#[test]
fn a_data_request_decodes_to_the_documents_endpoint_and_parameters_given() {
    let b = Builder::new();
    let png = [0x89u8, b'P', b'N', b'G', 0, 1, 2];
    unsafe {
        assert_eq!(
            jina_net_request_builder_add_text(b.0, cs("hello").as_ptr()),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_request_builder_add_bytes(b.0, png.as_ptr(), png.len(), cs("image/png").as_ptr()),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_request_builder_add_bytes(b.0, ptr::null(), 0, ptr::null()),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_request_builder_set_endpoint(b.0, cs("/index").as_ptr()),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_request_builder_set_parameters_json(
                b.0,
                cs(r#"{"top_k": 3, "name": "x", "deep": {"on": true, "list": [1.5, null]}}"#).as_ptr()
            ),
            JINA_NET_OK
        );
    }
    let m = b.message();
    let header = m.header.clone().unwrap();
    assert_eq!(header.exec_endpoint.as_deref(), Some("/index"));
    assert_eq!(header.request_id.len(), 32, "{}", header.request_id);
    assert!(header.request_id.bytes().all(|c| c.is_ascii_hexdigit()));
    let d = docs(&m);
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].content, Some(Content::Text("hello".into())));
    assert_eq!(d[1].content, Some(Content::Blob(png.to_vec())));
    assert_eq!(d[1].mime_type, "image/png");
    assert_eq!(d[2].content, Some(Content::Blob(Vec::new())));
    assert_eq!(d[2].mime_type, "");
    assert!(d.iter().all(|doc| doc.id.len() == 32));
    assert_ne!(d[0].id, d[1].id);
    let p = m.parameters.unwrap().fields;
    assert_eq!(p["top_k"].kind, Some(Kind::NumberValue(3.0)));
    assert_eq!(p["name"].kind, Some(Kind::StringValue("x".into())));
    let Some(Kind::StructValue(deep)) = &p["deep"].kind else {
        panic!("{:?}", p["deep"])
    };
    assert_eq!(deep.fields["on"].kind, Some(Kind::BoolValue(true)));
    let Some(Kind::ListValue(list)) = &deep.fields["list"].kind else {
        panic!()
    };
    assert_eq!(list.values[0].kind, Some(Kind::NumberValue(1.5)));
    assert_eq!(list.values[1].kind, Some(Kind::NullValue(0)));

    // Each build has a new random request id unless one is set; the builder can be changed and built again.
    assert_ne!(b.message().header.unwrap().request_id, header.request_id);
    unsafe {
        assert_eq!(
            jina_net_request_builder_set_request_id(b.0, cs("req-1").as_ptr()),
            JINA_NET_OK
        );
        assert_eq!(jina_net_request_builder_set_endpoint(b.0, ptr::null()), JINA_NET_OK);
        assert_eq!(
            jina_net_request_builder_set_parameters_json(b.0, ptr::null()),
            JINA_NET_OK
        );
    }
    let m = b.message();
    assert_eq!(m.header.as_ref().unwrap().request_id, "req-1");
    assert_eq!(m.header.as_ref().unwrap().exec_endpoint, None);
    assert_eq!(m.parameters, None);
    assert_eq!(docs(&m).len(), 3);

    // An empty builder makes a request with no documents.
    let empty = Builder::new().message();
    assert!(docs(&empty).is_empty());
}

#[test]
fn bad_input_gets_its_code_and_message_and_changes_nothing() {
    let b = Builder::new();
    unsafe {
        assert_eq!(
            jina_net_request_builder_set_parameters_json(b.0, cs(r#"{"k": 1}"#).as_ptr()),
            JINA_NET_OK
        );
        assert_eq!(
            jina_net_request_builder_set_parameters_json(b.0, cs("{not json").as_ptr()),
            JINA_NET_INVALID_ARGUMENT
        );
        let m = last_error();
        assert!(
            m.contains("jina_net_request_builder_set_parameters_json") && m.contains("not JSON"),
            "{m}"
        );
        assert_eq!(
            jina_net_request_builder_set_parameters_json(b.0, cs("[1, 2]").as_ptr()),
            JINA_NET_INVALID_ARGUMENT
        );
        assert!(last_error().contains("must be a JSON object"), "{}", last_error());
        // the builder kept the parameters it had
        assert_eq!(
            b.message().parameters.unwrap().fields["k"].kind,
            Some(Kind::NumberValue(1.0))
        );

        let bad_utf8 = [0xffu8 as c_char, 0];
        assert_eq!(
            jina_net_request_builder_add_text(b.0, bad_utf8.as_ptr()),
            JINA_NET_INVALID_UTF8
        );
        assert_eq!(
            jina_net_request_builder_add_text(b.0, ptr::null()),
            JINA_NET_NULL_ARGUMENT
        );
        assert_eq!(
            jina_net_request_builder_add_bytes(b.0, ptr::null(), 3, ptr::null()),
            JINA_NET_NULL_ARGUMENT
        );
        assert!(
            last_error().contains("data is NULL but its length is 3"),
            "{}",
            last_error()
        );
        assert!(docs(&b.message()).is_empty(), "a refused document was added");

        assert_eq!(
            jina_net_request_builder_add_text(ptr::null_mut(), cs("x").as_ptr()),
            JINA_NET_NULL_ARGUMENT
        );
        assert!(last_error().contains("builder is NULL"), "{}", last_error());
        assert_eq!(jina_net_request_builder_new(ptr::null_mut()), JINA_NET_NULL_ARGUMENT);
        let mut len = 0usize;
        assert_eq!(
            jina_net_request_builder_build(b.0, ptr::null_mut(), &mut len),
            JINA_NET_NULL_ARGUMENT
        );
        let mut data = ptr::null_mut();
        assert_eq!(
            jina_net_request_builder_build(ptr::null(), &mut data, &mut len),
            JINA_NET_NULL_ARGUMENT
        );
        assert!(data.is_null() && len == 0, "out-parameters written on failure");
        // every _free accepts NULL
        jina_net_request_builder_free(ptr::null_mut());
        jina_net_request_bytes_free(ptr::null_mut(), 0);
        jina_net_request_bytes_free(ptr::null_mut(), 5);
    }
}

#[test]
fn control_requests_decode_to_the_command_and_worker_given() {
    let (r, status) = control(0, None, 0, JINA_NET_NO_SHARD);
    assert_eq!(r, JINA_NET_OK);
    let m = ControlRequestProto::decode(status.as_slice()).unwrap();
    assert_eq!(m.command, Command::Status as i32);
    assert!(m.related_entities.is_empty());
    assert_eq!(m.header.unwrap().request_id.len(), 32);

    let (r, activate) = control(1, Some("10.0.0.7"), 8081, 2);
    assert_eq!(r, JINA_NET_OK);
    let m = ControlRequestProto::decode(activate.as_slice()).unwrap();
    assert_eq!(m.command, Command::Activate as i32);
    let e = &m.related_entities[0];
    assert_eq!(
        (e.id.as_str(), e.address.as_str(), e.port, e.shard_id),
        ("worker", "10.0.0.7", 8081, Some(2))
    );

    let (r, deactivate) = control(2, Some("w"), 9, JINA_NET_NO_SHARD);
    assert_eq!(r, JINA_NET_OK);
    let m = ControlRequestProto::decode(deactivate.as_slice()).unwrap();
    assert_eq!(m.command, Command::Deactivate as i32);
    assert_eq!(m.related_entities[0].shard_id, None);

    assert_eq!(control(3, None, 0, -1).0, JINA_NET_INVALID_ARGUMENT);
    assert!(last_error().contains("unknown control command 3"), "{}", last_error());
    assert_eq!(control(0, Some("h"), 1, -1).0, JINA_NET_INVALID_ARGUMENT);
    assert!(last_error().contains("STATUS names no worker"), "{}", last_error());
    assert_eq!(control(1, None, 1, -1).0, JINA_NET_NULL_ARGUMENT);
    assert!(last_error().contains("worker_host is NULL"), "{}", last_error());
    assert_eq!(control(1, Some("h"), 1, 1 << 40).0, JINA_NET_INVALID_ARGUMENT);
    let mut len = 0usize;
    assert_eq!(
        unsafe { jina_net_control_request_build(0, ptr::null(), 0, -1, ptr::null_mut(), &mut len) },
        JINA_NET_NULL_ARGUMENT
    );
}

/// Sends `bytes` of `kind` to `address` with the blocking one-shot helper; the response body.
fn send_sync(kind: u32, bytes: &[u8], address: &str, endpoint: Option<&str>) -> Vec<u8> {
    let mut options = std::mem::MaybeUninit::<jina_net_oneshot_options>::uninit();
    let endpoint = endpoint.map(cs);
    unsafe {
        jina_net_oneshot_options_init(options.as_mut_ptr(), std::mem::size_of::<jina_net_oneshot_options>());
    }
    let mut options = unsafe { options.assume_init() };
    options.endpoint = endpoint.as_ref().map_or(ptr::null(), |e| e.as_ptr());
    options.timeout_ms = 10_000;
    let mut response = ptr::null_mut();
    let r = unsafe {
        jina_net_send_request_sync(
            kind,
            bytes.as_ptr(),
            bytes.len(),
            cs(address).as_ptr(),
            &options,
            &mut response,
        )
    };
    assert_eq!(r, JINA_NET_OK, "{}", last_error());
    let (mut data, mut len) = (ptr::null(), 0usize);
    assert_eq!(
        unsafe { jina_net_response_body(response, &mut data, &mut len) },
        JINA_NET_OK
    );
    let body = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    unsafe { jina_net_response_free(response) };
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_worker_and_a_head_answer_the_bytes() {
    let worker = start("worker", Role::Echo).await;
    let head = start("head", "head:enc".parse().unwrap()).await;
    let (worker_address, head_address) = (worker.address(), head.address());
    tokio::task::spawn_blocking(move || {
        let b = Builder::new();
        unsafe {
            jina_net_request_builder_add_text(b.0, cs("hello").as_ptr());
            jina_net_request_builder_set_endpoint(b.0, cs("/index").as_ptr());
            jina_net_request_builder_set_request_id(b.0, cs("r-1").as_ptr());
            jina_net_request_builder_set_parameters_json(b.0, cs(r#"{"top_k": 3}"#).as_ptr());
        }
        let request = b.bytes();

        // The echo worker answers with the request, its route appended.
        let answer = decode(&send_sync(0, &request, &worker_address, Some("/index")));
        assert_eq!(answer.header.as_ref().unwrap().request_id, "r-1");
        assert_eq!(docs(&answer)[0].content, Some(Content::Text("hello".into())));
        assert_eq!(
            answer.routes.iter().map(|r| r.executor.as_str()).collect::<Vec<_>>(),
            ["worker"]
        );

        // STATUS to the worker; ACTIVATE the worker at the head; data through the head reaches it.
        let (_, status) = control(0, None, 0, JINA_NET_NO_SHARD);
        let echoed = ControlRequestProto::decode(send_sync(1, &status, &worker_address, None).as_slice()).unwrap();
        assert_eq!(echoed.command, Command::Status as i32);
        let port: u16 = worker_address.rsplit_once(':').unwrap().1.parse().unwrap();
        let (_, activate) = control(1, Some("127.0.0.1"), port, JINA_NET_NO_SHARD);
        send_sync(1, &activate, &head_address, None);
        let through = decode(&send_sync(0, &request, &head_address, Some("/index")));
        assert_eq!(through.header.as_ref().unwrap().request_id, "r-1");
        assert_eq!(
            route_names(&send_sync(0, &request, &head_address, Some("/index"))),
            ["worker", "head"]
        );
        let (_, deactivate) = control(2, Some("127.0.0.1"), port, JINA_NET_NO_SHARD);
        send_sync(1, &deactivate, &head_address, None);
    })
    .await
    .unwrap();
}
