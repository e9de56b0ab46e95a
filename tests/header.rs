//! `include/jina_net.h` must be what cbindgen generates from `src/ffi/` with `cbindgen.toml`.
//! `JINA_NET_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = root.join("include/jina_net.h");
    if std::env::var_os("JINA_NET_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/jina_net.h differs from what src/ffi/ generates; run `JINA_NET_BLESS=1 cargo test --test header` and commit it"
    );
}
