//! Helpers shared by the integration tests: request builders and server starters.
#![allow(dead_code)]

pub mod c_abi;
pub mod polled;
pub mod process;

use jina_net::proto::{DataRequestProto, HeaderProto};
use jina_net::Request;
pub use jina_net_testserver::{Role, TestServer};
use prost::Message;

/// A data request with a request id and `n` bytes of document payload.
pub fn data_request(id: &str, payload_len: usize) -> DataRequestProto {
    use jina_net::proto::docarray::{document_proto::Content, DocumentArrayProto, DocumentProto};
    use jina_net::proto::jina::data_request_proto::{data_content_proto::Documents, DataContentProto};
    let docs = DocumentArrayProto {
        docs: vec![DocumentProto {
            id: format!("{id}-doc"),
            content: (payload_len > 0).then(|| Content::Blob(vec![7u8; payload_len])),
            ..Default::default()
        }],
    };
    DataRequestProto {
        header: Some(HeaderProto {
            request_id: id.to_owned(),
            exec_endpoint: Some("/".into()),
            ..Default::default()
        }),
        data: Some(DataContentProto {
            documents: Some(Documents::Docs(docs)),
        }),
        ..Default::default()
    }
}

pub fn data(id: &str) -> Request {
    Request::from(&data_request(id, 0))
}

pub fn decode(body: &[u8]) -> DataRequestProto {
    DataRequestProto::decode(body).expect("response is a DataRequestProto")
}

/// The executors named in a response's routes (who answered).
pub fn route_names(body: &[u8]) -> Vec<String> {
    decode(body).routes.into_iter().map(|r| r.executor).collect()
}

pub async fn start(name: &str, role: Role) -> TestServer {
    TestServer::start(name, role, 0)
        .await
        .expect("test server starts on 127.0.0.1")
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

pub fn trailer(r: &jina_net::Response, key: &str) -> Option<String> {
    r.trailers.get(key).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
