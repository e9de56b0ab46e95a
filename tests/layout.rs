//! The shape of `src/`, checked from the code's own imports (file by file, not only module by module):
//!
//! - no two files import each other, directly or through others (no circle);
//! - every file sits in one layer of [`LAYERS`] and imports only from its own layer or lower ones;
//! - `extern "C"`, `#[no_mangle]`, `catch_unwind` and `unsafe` appear only under `src/ffi/`.
//!
//! An import is any path that starts with `crate::`, `super::`, `self::` or the name of a child
//! module, in `use` items, in code and in macro bodies; it points at the file of the longest module
//! prefix of the path (`crate::error::Error` → `src/error.rs`, `crate::Error` → `src/lib.rs`).
//! `#[cfg(test)]` modules are left out. `JINA_NET_LAYOUT_SRC=/path/to/src` checks another tree
//! (e.g. an old checkout: the circle test fails there and names the files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The layers of `src/`, bottom first: a file may import its own layer and those below it.
/// A prefix ending in `/` is a folder; every other entry is one file.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "error.rs",
            "address.rs",
            "host.rs",
            "proto.rs",
            "wire.rs",
            "random.rs",
            "log.rs",
            "request.rs",
            "data_request.rs",
        ],
    ),
    ("settings", &["policy/"]),
    ("runtimes", &["runtime/"]),
    ("the wire", &["transport/"]),
    ("one replica's state", &["replica/"]),
    ("picking", &["pick/"]),
    ("sending", &["send/"]),
    ("pools and one-shot sends", &["pool/", "oneshot.rs", "control.rs"]),
    ("discovery", &["k8s.rs", "pool_factory.rs"]),
    ("the C ABI", &["ffi/"]),
    ("the crate root", &["lib.rs"]),
];

fn src_dir() -> PathBuf {
    match std::env::var_os("JINA_NET_LAYOUT_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    }
}

/// A source file: its path under `src/` and its module path.
#[derive(Debug, Clone)]
struct SourceFile {
    rel: String,
    module: Vec<String>,
    ast: syn::File,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn load(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
            SourceFile {
                module: module_of(&rel),
                rel,
                ast,
            }
        })
        .collect()
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().trim() == "test")
    })
}

/// Collects the module paths a file names (absolute, from the crate root).
struct Imports<'a> {
    /// The module the code being visited is in (the file's, plus inline modules).
    module: Vec<String>,
    /// Child module names declared in the module being visited.
    children: Vec<BTreeSet<String>>,
    known: &'a BTreeSet<Vec<String>>,
    found: BTreeSet<Vec<String>>,
}

impl Imports<'_> {
    /// Turns a path's segments into an absolute path, if it is one of this crate.
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.clone(),
            "super" => {
                let mut m = self.module.clone();
                m.pop()?;
                m
            }
            name if self.children.last().is_some_and(|c| c.contains(name)) => {
                let mut m = self.module.clone();
                m.push(name.to_owned());
                return Some(self.extend(m, &segments[1..]));
            }
            _ => return None,
        };
        let mut rest = &segments[1..];
        while rest.first().is_some_and(|s| s == "super") {
            base.pop()?;
            rest = &rest[1..];
        }
        Some(self.extend(base, rest))
    }

    fn extend(&self, mut base: Vec<String>, rest: &[String]) -> Vec<String> {
        base.extend(rest.iter().cloned());
        base
    }

    fn record(&mut self, segments: Vec<String>) {
        if let Some(path) = self.absolute(&segments) {
            self.found.insert(path);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.record(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.record(full);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside macro bodies (`tokio::select!`, `format!`, ...): `crate :: a :: b` sequences.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if matches!(id.to_string().as_str(), "crate" | "super") => {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while j + 2 < trees.len() + 1 {
                        let colons = matches!((&trees.get(j), &trees.get(j + 1)),
                            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':');
                        match (colons, trees.get(j + 2)) {
                            (true, Some(TokenTree::Ident(next))) => {
                                segments.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    self.record(segments);
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

fn declared_children(items: &[syn::Item]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        if let Some((_, items)) = &m.content {
            self.module.push(m.ident.to_string());
            self.children.push(declared_children(items));
            for item in items {
                self.visit_item(item);
            }
            self.children.pop();
            self.module.pop();
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.record(segments);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The file-level import graph: file → the files it imports (itself left out).
fn graph(files: &[SourceFile]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let file_of: BTreeMap<Vec<String>, String> = files.iter().map(|f| (f.module.clone(), f.rel.clone())).collect();
    let mut edges = BTreeMap::new();
    for f in files {
        let mut imports = Imports {
            module: f.module.clone(),
            children: vec![declared_children(&f.ast.items)],
            known: &known,
            found: BTreeSet::new(),
        };
        // Inner attributes and items, without `#[cfg(test)]` modules.
        for item in &f.ast.items {
            imports.visit_item(item);
        }
        let mut targets = BTreeSet::new();
        for path in &imports.found {
            // The longest prefix that is a module file.
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| imports.known.contains(prefix))
                .and_then(|m| file_of.get(&m).cloned());
            if let Some(t) = target {
                if t != f.rel {
                    targets.insert(t);
                }
            }
        }
        edges.insert(f.rel.clone(), targets);
    }
    edges
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn connect<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                connect(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            connect(&mut s, v);
        }
    }
    s.out
}

fn layer_of(rel: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, members)| {
        members.iter().any(|m| {
            if m.ends_with('/') {
                rel.starts_with(m)
            } else {
                rel == *m
            }
        })
    })
}

#[test]
fn no_import_circle_between_files() {
    let edges = graph(&load(&src_dir()));
    let found = circles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            let ties: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("    {a} -> {b}"))
                })
                .collect();
            format!("  circle of {} files: {}\n{}", c.len(), c.join(", "), ties.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "files of {} import each other in a circle:\n{}",
        src_dir().display(),
        described.join("\n")
    );
}

#[test]
fn layers_import_only_downward() {
    let files = load(&src_dir());
    let unplaced: Vec<&str> = files
        .iter()
        .map(|f| f.rel.as_str())
        .filter(|r| layer_of(r).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "files in no layer of tests/layout.rs (place them): {unplaced:?}"
    );
    let mut upward = Vec::new();
    for (from, targets) in graph(&files) {
        let lf = layer_of(&from).unwrap();
        for to in targets {
            let lt = layer_of(&to).unwrap();
            if lt > lf {
                upward.push(format!("  {from} ({}) -> {to} ({})", LAYERS[lf].0, LAYERS[lt].0));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn only_the_c_abi_is_unsafe() {
    let src = src_dir();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut found = Vec::new();
    for path in paths {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("ffi/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for needle in ["extern \"C\"", "no_mangle", "catch_unwind", "unsafe "] {
            if code.contains(needle) {
                found.push(format!("  {rel}: {needle}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "only src/ffi/ may hold extern \"C\", #[no_mangle], catch_unwind and unsafe:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_a_circle_and_an_upward_import() {
    // Two files that import each other, one through a macro body, and one through `super::`.
    let a: syn::File = syn::parse_quote! {
        mod b;
        use crate::c::Thing;
        fn f() { tracing::debug!("{}", crate::a::b::name()); }
    };
    let b: syn::File = syn::parse_quote! {
        pub fn name() -> &'static str { super::super::c::NAME }
    };
    let c: syn::File = syn::parse_quote! {
        pub const NAME: &str = "c";
        pub struct Thing;
        fn g() { let _ = crate::a::f; }
    };
    let files = vec![
        SourceFile {
            rel: "a/mod.rs".into(),
            module: module_of("a/mod.rs"),
            ast: a,
        },
        SourceFile {
            rel: "a/b.rs".into(),
            module: module_of("a/b.rs"),
            ast: b,
        },
        SourceFile {
            rel: "c.rs".into(),
            module: module_of("c.rs"),
            ast: c,
        },
    ];
    let edges = graph(&files);
    assert_eq!(
        edges["a/mod.rs"],
        BTreeSet::from(["a/b.rs".to_owned(), "c.rs".to_owned()])
    );
    assert_eq!(edges["a/b.rs"], BTreeSet::from(["c.rs".to_owned()]));
    assert_eq!(edges["c.rs"], BTreeSet::from(["a/mod.rs".to_owned()]));
    assert_eq!(
        circles(&edges),
        vec![vec!["a/b.rs".to_owned(), "a/mod.rs".to_owned(), "c.rs".to_owned()]]
    );
    assert_eq!(layer_of("transport/call.rs"), Some(3));
    assert!(layer_of("pool/mod.rs") > layer_of("send/retry.rs"));
}
