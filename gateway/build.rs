//! Builds the dashboard (web/) with npm into `OUT_DIR/dist`, which `src/assets.rs` embeds
//! (include_dir).
//!
//! The web dependencies are an explicit step (`npm ci` in web/: the README's quick start and
//! `.ci/run` do it): a build script never downloads. `EDGE_SKIP_WEB_BUILD=1` builds the gateway
//! with a placeholder page instead (for machines without Node.js); nothing of the build output is
//! ever written into the source tree.

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
            panic!(
                "the dashboard's dependencies are not installed: run `npm ci` in {} first \
                 (or set EDGE_SKIP_WEB_BUILD=1 to build the gateway without the dashboard)",
                web.display()
            );
        }
        let out = dist.to_str().expect("OUT_DIR is UTF-8");
        npm(&web, &["run", "build", "--", "--outDir", out, "--emptyOutDir"]);
        // Source maps stay out of the binary.
        remove_maps(&dist);
    }
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

fn remove_maps(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read dist").flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_maps(&path);
        } else if path.extension().is_some_and(|e| e == "map") {
            std::fs::remove_file(&path).expect("remove a source map");
        }
    }
}

const PLACEHOLDER: &str = "<!doctype html><meta charset=utf-8><title>Edge Backup</title>\
<p>This gateway was built without the dashboard (EDGE_SKIP_WEB_BUILD). grpc-web and /healthz work.</p>";
