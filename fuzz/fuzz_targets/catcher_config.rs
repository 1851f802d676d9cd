//! The catcher's config file, whatever it holds: loaded and validated, or refused with the key
//! named. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("catcher.toml");
    std::fs::write(&file, data).expect("write the config");
    let _ = catcher::config::Config::load(&file, true);
});
