//! `ebk` as a user runs it (the live view and the reports against a real fleet are tested through
//! `catcher status`, which hands over to this binary: catcher/tests/it/tui.rs).

use edgebackup_testkit::Spec;

async fn ebk(args: &[&str]) -> std::process::Output {
    Spec::new("ebk", &std::env::temp_dir()).args(args).output(30).await
}

#[tokio::test]
async fn an_unreachable_catcher_exits_3_and_says_so() {
    // Port 1 on loopback: nothing listens there.
    let out = ebk(&["status", "--catcher", "127.0.0.1:1", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON record even when unreachable");
    assert_eq!(doc["catcher"]["reachable"], false);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "), "{out:?}");
}

#[tokio::test]
async fn help_documents_the_formats_and_exit_codes() {
    let out = ebk(&["status", "--help"]).await;
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--live", "--format", "--check", "Exit codes:", "3  the catcher is unreachable"] {
        assert!(help.contains(needle), "{needle} in:\n{help}");
    }
}
