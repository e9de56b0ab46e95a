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

/// The names a C header declares at file scope: macros, struct and enum tags, enum constants,
/// typedefs and functions (struct members and parameters are left out). A small scanner for the
/// regular shape of cbindgen's output.
fn declared_names(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    // Comments out (no comment marker appears inside a string in the header).
    let mut text = String::new();
    let mut rest = header;
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    text.push_str(rest);
    let mut code = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let t = line.trim_start();
        if let Some(d) = t.strip_prefix('#') {
            let d = d.trim_start();
            if let Some(m) = d.strip_prefix("define") {
                let name: String = m
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    // Tokens: identifiers and single punctuation characters.
    let mut tokens: Vec<String> = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    let is_ident = |t: &str| t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    let keywords = [
        "typedef",
        "struct",
        "enum",
        "union",
        "const",
        "extern",
        "void",
        "bool",
        "char",
        "int",
        "unsigned",
        "signed",
        "long",
        "short",
        "float",
        "double",
        "size_t",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "intptr_t",
        "uintptr_t",
        "C",
    ];
    // Walk statements at file scope; `extern "C" {` only opens a block for C++.
    let mut depth = 0usize;
    let mut statement: Vec<String> = Vec::new();
    let mut in_enum_body = false;
    let mut expect_constant = false;
    let mut k = 0;
    while k < tokens.len() {
        let t = tokens[k].clone();
        k += 1;
        match t.as_str() {
            "{" => {
                let is_extern_block =
                    statement.last().is_some_and(|s| s == "\"") || statement.iter().any(|s| s == "extern");
                if is_extern_block && depth == 0 {
                    statement.clear();
                    continue;
                }
                if depth == 0 {
                    // a tag defined here
                    if let Some(p) = statement
                        .iter()
                        .position(|s| s == "struct" || s == "enum" || s == "union")
                    {
                        if let Some(tag) = statement.get(p + 1).filter(|s| is_ident(s)) {
                            names.push(tag.clone());
                        }
                        in_enum_body = statement[p] == "enum";
                        expect_constant = in_enum_body;
                    }
                }
                depth += 1;
            }
            "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_enum_body = false;
                }
            }
            "," if in_enum_body && depth == 1 => expect_constant = true,
            ";" if depth == 0 => {
                // a typedef names its last identifier, or the one after `(*`; a function its name before `(`
                if statement.first().is_some_and(|s| s == "typedef") {
                    let fn_ptr = statement
                        .windows(3)
                        .find(|w| w[0] == "(" && w[1] == "*" && is_ident(&w[2]));
                    match fn_ptr {
                        Some(w) => names.push(w[2].clone()),
                        None => {
                            if let Some(last) = statement.iter().rev().find(|s| is_ident(s)) {
                                names.push(last.clone());
                            }
                        }
                    }
                } else if let Some(p) = statement.iter().position(|s| s == "(") {
                    if p > 0 && is_ident(&statement[p - 1]) {
                        names.push(statement[p - 1].clone());
                    }
                } else if let Some(p) = statement.iter().position(|s| s == "struct" || s == "enum") {
                    // a declaration of a tag only (`struct x;`)
                    if let Some(tag) = statement.get(p + 1).filter(|s| is_ident(s)) {
                        names.push(tag.clone());
                    }
                }
                statement.clear();
            }
            _ => {
                if in_enum_body && depth == 1 {
                    if expect_constant && is_ident(&t) {
                        names.push(t.clone());
                        expect_constant = false;
                    }
                } else if depth == 0 {
                    statement.push(t);
                }
            }
        }
    }
    names.retain(|n| !n.is_empty() && !keywords.contains(&n.as_str()));
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_name_of_the_installed_headers_carries_the_prefix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/jina_net.h")).unwrap();
    let names = declared_names(&header);
    assert!(names.len() > 100, "the scanner found only {names:?}");
    for expected in [
        "JINA_NET_H",
        "jina_net_pool_new",
        "jina_net_pool_options",
        "JINA_NET_OK",
        "jina_net_send_callback",
        "JINA_NET_VERSION_MAJOR",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not seen: {names:?}");
    }
    let stray: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("jina_net_") && !n.starts_with("JINA_NET_"))
        .collect();
    assert!(
        stray.is_empty(),
        "names without the jina_net_ / JINA_NET_ prefix in include/jina_net.h: {stray:?}"
    );
    // The C++ wrapper: every macro prefixed, everything else inside namespace jina_net.
    let hpp = std::fs::read_to_string(root.join("bindings/cpp/jina_net.hpp")).unwrap();
    for line in hpp.lines() {
        let t = line.trim_start();
        if let Some(d) = t
            .strip_prefix('#')
            .map(str::trim_start)
            .and_then(|d| d.strip_prefix("define"))
        {
            let name = d.split_whitespace().next().unwrap_or("");
            assert!(
                name.starts_with("JINA_NET_"),
                "bindings/cpp/jina_net.hpp defines {name}"
            );
        }
    }
}

#[test]
fn the_name_scanner_sees_every_kind_of_declaration() {
    let header = r#"
#define JINA_NET_A 1
#define LEAK { 1, 2 }
typedef enum jina_net_e { JINA_NET_X = 0, BAD_CONSTANT = 1, } jina_net_e;
typedef struct leaked_struct { int member; } jina_net_s;
typedef void (*stray_callback)(void *user_data, int x);
/* a comment naming not_a_name( */
#ifdef __cplusplus
extern "C" {
#endif
int32_t stray_function(const struct jina_net_s *s,
                       size_t n);
void jina_net_ok(void);
#ifdef __cplusplus
}
#endif
"#;
    let names = declared_names(header);
    assert_eq!(
        names,
        [
            "BAD_CONSTANT",
            "JINA_NET_A",
            "JINA_NET_X",
            "LEAK",
            "jina_net_e",
            "jina_net_ok",
            "jina_net_s",
            "leaked_struct",
            "stray_callback",
            "stray_function"
        ]
    );
}
