//! restic and rclone stations with the real binaries; configuration mistakes.

use crate::harness::*;

fn require(tool: &str) {
    let found = std::process::Command::new(tool).arg("version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is required for these tests (Debian package `{tool}`)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_and_rclone_stations_store_verify_and_restore() {
    require("restic");
    require("rclone");
    let world = World::new().await;
    let password = world.path("restic-password");
    std::fs::write(&password, "correct horse battery staple\n").unwrap();
    let stations = format!(
        "[[stations]]\nid = \"rc\"\nkind = \"rclone\"\nuri = \"{}\"\n\n[[stations]]\nid = \"rs\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\n",
        world.path("stations/rclone-remote/").display(),
        world.path("stations/restic-repo").display(),
        password.display()
    );
    let config = world.agent_config("tools", "edge-tools", &stations, "");
    let data = world.data("tools");
    copy_fixture(&data);
    std::fs::write(data.join("blob.bin"), random_bytes(3 << 20)).unwrap();
    let (code, stdout, stderr) = agent_fn(&config, &["check-config"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = agent_fn(&config, &["backup", "--once"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done = world.completed("edge-tools", 1, 30).await;
    let p = world.package(&done[0].package_id).await;
    assert_eq!(p.placements.len(), 2);
    assert!(p.placements.iter().all(|pl| pl.verified_sha256 == p.sha256), "{:?}", p.placements);
    assert!(p.tool_ref.ends_with(".tar.zst"));

    let (code, stdout, _) = agent_fn(&config, &["verify", &p.package_id]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("station rc") && stdout.contains("station rs"), "{stdout}");
    let expected = tree(&data);
    for station in ["rc", "rs"] {
        let out = world.path(&format!("restored-{station}/"));
        let (code, stdout, stderr) =
            agent_fn(&config, &["restore", &p.package_id, "--to", out.to_str().unwrap(), "--station", station]).await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(tree(&out), expected, "restored from {station}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_name_the_key() {
    let world = World::new().await;
    let base = world.agent_config("cfg", "edge-cfg", &world.local_station("hot"), "");
    let text = std::fs::read_to_string(&base).unwrap();
    let cases = [
        ("package_type = \"user_data\"", "package_type = \"music\"", "folders[0].package_type"),
        ("kind = \"local\"", "kind = \"ftp\"", "stations[0].kind"),
        ("max_backoff_secs = 1", "max_backoff_secs = \"soon\"", "max_backoff_secs"),
        ("max_backoff_secs = 1", "max_backoff_secs = 1\ncompression_level = 99", "compression_level"),
        ("max_backoff_secs = 1", "max_backoff_secs = 1\nunknown_key = 1", "unknown_key"),
        ("excludes = [\"*.tmp\"]", "excludes = [\"[\"]", "folders[0].excludes[0]"),
    ];
    for (from, to, key) in cases {
        let path = world.path("bad.toml");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let (code, _, stderr) = agent_fn(&path, &["check-config"]).await;
        assert_eq!(code, 2, "{key}: {stderr}");
        assert!(stderr.contains(key), "expected {key} in: {stderr}");
    }
    // A station whose tool is missing: a clear startup error naming the tool and the station.
    let password = world.path("pw");
    std::fs::write(&password, "pw").unwrap();
    let stations = format!(
        "[[stations]]\nid = \"vault\"\nkind = \"restic\"\nuri = \"{}\"\npassword_file = \"{}\"\n",
        world.path("repo").display(),
        password.display()
    );
    let config = world.agent_config("notool", "edge-notool", &stations, "");
    let out = agent_cmd(&config, &["check-config"]).env("PATH", "/nonexistent").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stations[0]") && stderr.contains("vault") && stderr.contains("`restic`"), "{stderr}");
}
