//! Builds the dashboard (web/) with npm into OUT_DIR and embeds every file of it.
//!
//! `EDGE_SKIP_WEB_BUILD=1` builds the gateway with a placeholder page instead (for machines
//! without Node.js); nothing of the build output is ever written into the source tree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.join("../web").canonicalize().expect("web/ beside gateway/");
    let dist = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("dist");
    println!("cargo:rerun-if-env-changed=EDGE_SKIP_WEB_BUILD");
    watch_sources(&web);

    if std::env::var_os("EDGE_SKIP_WEB_BUILD").is_some_and(|v| v != "0") {
        std::fs::create_dir_all(&dist).expect("create dist");
        std::fs::write(dist.join("index.html"), PLACEHOLDER).expect("write placeholder");
    } else {
        if !web.join("node_modules").is_dir() {
            npm(&web, &["ci", "--no-audit", "--no-fund"]);
        }
        let out = dist.to_str().expect("OUT_DIR is UTF-8");
        npm(&web, &["run", "build", "--", "--outDir", out, "--emptyOutDir"]);
    }
    embed(&dist);
}

/// Reruns when the dashboard's sources change. `src/gen` is excluded: the build regenerates it.
fn watch_sources(web: &Path) {
    println!("cargo:rerun-if-changed={}", web.join("../proto").display());
    for name in [
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "svelte.config.js",
        "tsconfig.json",
        "buf.gen.yaml",
        "public",
    ] {
        let path = web.join(name);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    for entry in std::fs::read_dir(web.join("src")).expect("read web/src").flatten() {
        if entry.file_name() != "gen" {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}

fn npm(dir: &Path, args: &[&str]) {
    let output = Command::new("npm").args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("cannot run npm ({e}); install Node.js 20+ or set EDGE_SKIP_WEB_BUILD=1 to build without the dashboard")
    });
    if !output.status.success() {
        panic!(
            "`npm {}` in {} failed:\n{}\n{}\n(set EDGE_SKIP_WEB_BUILD=1 to build the gateway without the dashboard)",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Writes `assets.rs`: a table of (relative path, bytes) for every built file.
fn embed(dist: &Path) {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut code = String::from("/// Every file of the built dashboard: (path relative to its root, contents).\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),").unwrap();
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs");
    std::fs::write(out, code).expect("write assets.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dist").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_none_or(|e| e != "map") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}

const PLACEHOLDER: &str = "<!doctype html><meta charset=utf-8><title>Edge Backup</title>\
<p>This gateway was built without the dashboard (EDGE_SKIP_WEB_BUILD). grpc-web and /healthz work.</p>";
