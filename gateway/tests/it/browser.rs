//! The dashboard in a real headless Chromium (web/e2e, driven by playwright-core) against the
//! real catcher and gateway binaries built for this test run.

use std::process::Command;

#[test]
fn dashboard_end_to_end_in_chromium() {
    let catcher = edgebackup_testkit::bin("catcher");
    let bin_dir = catcher.parent().unwrap();
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let status = Command::new("npm")
        .args(["run", "e2e"])
        .current_dir(&web)
        .env("EDGE_BIN_DIR", bin_dir)
        .status()
        .expect("run npm (Node.js 20+ is required for the dashboard tests)");
    assert!(status.success(), "web e2e tests failed (output above)");
}

#[test]
fn dashboard_unit_tests() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let status = Command::new("npm").args(["test"]).current_dir(&web).status().expect("run npm");
    assert!(status.success(), "web unit tests failed (output above)");
}

#[test]
fn dashboard_type_checks() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let status = Command::new("npm").args(["run", "check"]).current_dir(&web).status().expect("run npm");
    assert!(status.success(), "svelte-check found problems (output above)");
}
