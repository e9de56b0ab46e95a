//! Compiles jina 3.1.0's wire schema (`proto/jina.proto`, `proto/docarray.proto`).
//!
//! `protoc` comes from the `protoc-bin-vendored` crate so a fresh machine needs no system package;
//! set `PROTOC` (and optionally `PROTOC_INCLUDE`) to use another one.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    let well_known = match std::env::var_os("PROTOC_INCLUDE") {
        Some(dir) => PathBuf::from(dir),
        None => protoc_bin_vendored::include_path()?,
    };
    println!("cargo:rerun-if-changed=proto/jina.proto");
    println!("cargo:rerun-if-changed=proto/docarray.proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    println!("cargo:rerun-if-env-changed=PROTOC_INCLUDE");
    tonic_prost_build::configure()
        // The library's own sends write and read the gRPC frames themselves (src/transport/); the
        // generated clients are kept for users who want typed stubs, the servers serve the test server.
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[PathBuf::from("proto/jina.proto"), PathBuf::from("proto/docarray.proto")],
            &[PathBuf::from("proto"), well_known],
        )?;
    Ok(())
}
