//! Building a `jina.DataRequestProto` for the common case, without a protobuf library on the caller's
//! side: documents from text or bytes, an endpoint, parameters given as a JSON object. What
//! `jina_net_request_builder_*` of the C ABI wraps.

use prost::Message;
use prost_types::value::Kind;

use crate::error::{Error, Result};
use crate::proto::docarray::{document_proto, DocumentArrayProto, DocumentProto};
use crate::proto::jina::data_request_proto::{data_content_proto, DataContentProto};
use crate::proto::{DataRequestProto, HeaderProto};

/// A data request being put together; [`DataRequestBuilder::build`] makes the message.
#[derive(Debug, Clone, Default)]
pub struct DataRequestBuilder {
    docs: Vec<DocumentProto>,
    endpoint: Option<String>,
    parameters: Option<prost_types::Struct>,
    request_id: Option<String>,
}

/// 32 hex digits, as jina's request ids and docarray's document ids.
fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl DataRequestBuilder {
    /// An empty request: no documents, no endpoint, no parameters.
    pub fn new() -> DataRequestBuilder {
        DataRequestBuilder::default()
    }

    /// Appends a document whose content is `text` (`DocumentProto.text`), with a random id.
    pub fn add_text(&mut self, text: &str) -> &mut Self {
        self.docs.push(DocumentProto {
            id: random_id(),
            content: Some(document_proto::Content::Text(text.to_owned())),
            ..Default::default()
        });
        self
    }

    /// Appends a document whose content is `bytes` (`DocumentProto.blob`), with a random id and, when
    /// given, its `mime_type`.
    pub fn add_bytes(&mut self, bytes: &[u8], mime_type: Option<&str>) -> &mut Self {
        self.docs.push(DocumentProto {
            id: random_id(),
            content: Some(document_proto::Content::Blob(bytes.to_vec())),
            mime_type: mime_type.unwrap_or_default().to_owned(),
            ..Default::default()
        });
        self
    }

    /// The executor endpoint (`header.exec_endpoint`, e.g. `/index`); `None` = jina's default
    /// endpoint. A send should carry the same endpoint (`SendOptions::endpoint`) for heads.
    pub fn endpoint(&mut self, endpoint: Option<&str>) -> &mut Self {
        self.endpoint = endpoint.map(str::to_owned);
        self
    }

    /// `header.request_id`; `None` (the default) = 32 random hex digits at each build.
    pub fn request_id(&mut self, request_id: Option<&str>) -> &mut Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }

    /// The executor's `parameters` from a JSON object (`{"top_k": 3}`); `None` = none.
    /// `Error::InvalidArgument` when `json` is not JSON or not an object; then nothing changes.
    pub fn parameters_json(&mut self, json: Option<&str>) -> Result<&mut Self> {
        self.parameters = match json {
            None => None,
            Some(json) => Some(struct_from_json(json)?),
        };
        Ok(self)
    }

    /// The message.
    pub fn build(&self) -> DataRequestProto {
        DataRequestProto {
            header: Some(HeaderProto {
                request_id: self.request_id.clone().unwrap_or_else(random_id),
                exec_endpoint: self.endpoint.clone(),
                ..Default::default()
            }),
            parameters: self.parameters.clone(),
            routes: Vec::new(),
            data: Some(DataContentProto {
                documents: Some(data_content_proto::Documents::Docs(DocumentArrayProto {
                    docs: self.docs.clone(),
                })),
            }),
        }
    }

    /// The message, serialized.
    pub fn encode(&self) -> Vec<u8> {
        self.build().encode_to_vec()
    }
}

/// A `google.protobuf.Struct` from the text of a JSON object.
pub fn struct_from_json(json: &str) -> Result<prost_types::Struct> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::InvalidArgument(format!("parameters are not JSON: {e}")))?;
    match value {
        serde_json::Value::Object(map) => Ok(struct_of(map)),
        other => Err(Error::InvalidArgument(format!(
            "parameters must be a JSON object ({{...}}), not {}",
            kind_name(&other)
        ))),
    }
}

fn kind_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn struct_of(map: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, value_of(v))).collect(),
    }
}

/// JSON → `google.protobuf.Value` as protobuf's JSON mapping has it (numbers become doubles).
fn value_of(value: serde_json::Value) -> prost_types::Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(value_of).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(struct_of(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
