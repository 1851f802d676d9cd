//! Hostile packages: tar entries with any names (`..`, absolute paths, long names), any types
//! (symlinks and hardlinks pointing anywhere, devices, fifos, directories) and contents,
//! compressed as packages are, extracted as a restore drill extracts them. Whatever happens,
//! nothing is written outside the target and no link or special file is created.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Package {
    entries: Vec<Entry>,
    manifest: Option<Vec<u8>>,
}

fn header(name: &[u8], kind: tar::EntryType, link: &[u8], size: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    let raw = h.as_old_mut();
    let n = name.len().min(raw.name.len());
    raw.name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(raw.linkname.len());
    raw.linkname[..l].copy_from_slice(&link[..l]);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

const KINDS: [tar::EntryType; 8] = [
    tar::EntryType::Regular,
    tar::EntryType::Directory,
    tar::EntryType::Symlink,
    tar::EntryType::Link,
    tar::EntryType::Char,
    tar::EntryType::Block,
    tar::EntryType::Fifo,
    tar::EntryType::GNULongName,
];

/// Every path under `dir`, with whether it is a plain file or directory.
fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, bool)>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let meta = std::fs::symlink_metadata(e.path()).expect("metadata");
        let plain = meta.is_file() || meta.is_dir();
        out.push((e.path(), plain));
        if meta.is_dir() {
            walk(&e.path(), out);
        }
    }
}

fuzz_target!(|p: Package| {
    let mut tar = tar::Builder::new(Vec::new());
    for e in p.entries.iter().take(32) {
        let kind = KINDS[usize::from(e.kind) % KINDS.len()];
        let h = header(&e.name, kind, &e.link, e.data.len() as u64);
        tar.append(&h, e.data.as_slice()).expect("append to a Vec");
    }
    if let Some(m) = &p.manifest {
        let h = header(agent::archive::MANIFEST_NAME.as_bytes(), tar::EntryType::Regular, b"", m.len() as u64);
        tar.append(&h, m.as_slice()).expect("append to a Vec");
    }
    let bytes = tar.into_inner().expect("finish the tar");
    let package = zstd::encode_all(bytes.as_slice(), 1).expect("compress");

    let root = tempfile::tempdir().expect("a temp dir");
    let target = root.path().join("target");
    std::fs::create_dir(&target).expect("the target");
    let _ = agent::archive::extract(package.as_slice(), &target);

    let mut found = Vec::new();
    walk(root.path(), &mut found);
    for (path, plain) in found {
        assert!(path.starts_with(&target), "written outside the target: {}", path.display());
        assert!(plain, "a link or special file was created: {}", path.display());
    }
});
