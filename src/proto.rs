//! The wire schema of jina 3.1.0 (with docarray 0.9.18), generated from `proto/` by `build.rs`.

#[allow(clippy::all, missing_docs)]
pub mod docarray {
    tonic::include_proto!("docarray");
}

#[allow(clippy::all, missing_docs)]
pub mod jina {
    tonic::include_proto!("jina");
}

pub use jina::{
    control_request_proto::Command, status_proto::StatusCode, ControlRequestProto, DataRequestListProto,
    DataRequestProto, HeaderProto, RelatedEntity, StatusProto,
};

/// Full gRPC method paths of the three services a Jina 3.1 head or worker serves.
pub mod paths {
    /// `jina.JinaSingleDataRequestRPC/process_single_data(DataRequestProto) -> DataRequestProto`
    pub const PROCESS_SINGLE_DATA: &str = "/jina.JinaSingleDataRequestRPC/process_single_data";
    /// `jina.JinaDataRequestRPC/process_data(DataRequestListProto) -> DataRequestProto`
    pub const PROCESS_DATA: &str = "/jina.JinaDataRequestRPC/process_data";
    /// `jina.JinaControlRequestRPC/process_control(ControlRequestProto) -> ControlRequestProto`
    pub const PROCESS_CONTROL: &str = "/jina.JinaControlRequestRPC/process_control";
}
