//! The agent's config file, whatever it holds: loaded and validated, or refused. Nothing may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, data).expect("write the config");
    let _ = agent::config::Config::load(&file, true);
});
