//! The native package format: a tar of the files plus a manifest in independent zstd frames
//! (seekable: `frames`), produced in one streaming pass. Each file's sha256 is computed as it is read into the archive and the
//! archive's sha256 as it is written, so memory stays bounded and nothing is read twice.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use crate::frames::FrameWriter;
use crate::safety::{EntropySample, is_high_entropy};
use crate::state::ManifestFile;

/// The manifest's name inside the archive (last entry).
pub const MANIFEST_NAME: &str = ".edgebackup/manifest.json";

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub sha256: String,
    pub size: u64,
    pub manifest: Vec<ManifestFile>,
    /// Planned files that vanished before they could be read.
    pub missing: Vec<String>,
    /// Packaged files whose first 64 KiB look encrypted or compressed: the panic brake's
    /// baseline, sampled as the files were read.
    pub high_entropy: HashSet<String>,
}

/// A writer that hashes and counts what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), count: 0 }
    }

    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads exactly `expected` bytes of a file while hashing them; a file that shrank is an error
/// (tar would otherwise write a corrupt entry).
struct HashReader<'a, R> {
    inner: R,
    hasher: Sha256,
    sample: EntropySample,
    read: u64,
    expected: u64,
    on_bytes: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.read < self.expected {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was being packaged"));
        }
        self.hasher.update(&buf[..n]);
        self.sample.update(&buf[..n]);
        self.read += n as u64;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

/// sha256 of everything `r` yields.
pub fn sha256_of(mut r: impl Read) -> io::Result<(String, u64)> {
    let mut w = HashWriter::new(io::sink());
    io::copy(&mut r, &mut w)?;
    let (_, sha, n) = w.finish();
    Ok((sha, n))
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// zstd worker threads: one per core, at most four (an edge device has other work to do).
fn compression_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Streams `files` (relative to `root`) into `out` as tar in independent zstd frames (a
/// seekable package: `frames`). `on_bytes` is told how many input bytes were read, for
/// progress. Each manifest file gets its range in the archive.
pub fn build(
    root: &Path,
    files: &[String],
    out: impl Write,
    level: i32,
    on_bytes: &mut dyn FnMut(u64),
) -> io::Result<Built> {
    // Compressed on worker threads while this one reads and hashes the files: a single thread
    // doing all three runs at about two thirds of `tar | zstd | sha256sum`.
    let frames = FrameWriter::new(HashWriter::new(out), level, compression_workers())?;
    let mut tar = tar::Builder::new(frames);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut manifest = Vec::with_capacity(files.len());
    // Each packaged file's tar entry, as a span of the decompressed stream.
    let mut spans = Vec::with_capacity(files.len());
    let mut missing = Vec::new();
    let mut high_entropy = HashSet::new();
    for rel in files {
        let path = root.join(rel);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(rel.clone());
                continue;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let meta = file.metadata()?;
        let size = meta.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        // The real mode (the catalog restores it; this keeps a plain `tar -x` close too).
        let mode = std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777;
        header.set_mode(mode);
        let mtime = mtime_ns(&meta);
        header.set_mtime((mtime / 1_000_000_000).max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        let mut reader = HashReader {
            inner: file.take(size),
            hasher: Sha256::new(),
            sample: EntropySample::default(),
            read: 0,
            expected: size,
            on_bytes: &mut *on_bytes,
        };
        let start = tar.get_ref().position();
        tar.append_data(&mut header, rel, &mut reader)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        spans.push((start, tar.get_ref().position()));
        if is_high_entropy(reader.sample.bits()) {
            high_entropy.insert(rel.clone());
        }
        let sha256 = hex::encode(reader.hasher.finalize());
        let (uid, gid) = (std::os::unix::fs::MetadataExt::uid(&meta), std::os::unix::fs::MetadataExt::gid(&meta));
        manifest.push(ManifestFile { path: rel.clone(), size, sha256, mtime_ns: mtime, mode, uid, gid, range: None });
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, MANIFEST_NAME, json.as_slice())?;
    let frames = tar.into_inner()?;
    let (mut hashed, index) = frames.finish()?;
    hashed.flush()?;
    let (_, sha256, size) = hashed.finish();
    for (f, (start, end)) in manifest.iter_mut().zip(spans) {
        f.range = Some(index.locate(start, end).into());
    }
    Ok(Built { sha256, size, manifest, missing, high_entropy })
}

fn damaged(at: &str, e: io::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the archive is damaged at {at}: {e}"))
}

/// Where damage met after the last intact entry (`None`: before any) begins.
fn after(last_good: Option<&str>) -> String {
    last_good.map_or_else(|| "its start".to_owned(), |p| format!("the entry after {p}"))
}

/// A file whose restored contents do not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub reason: String,
}

/// Extracts an archive into `dest` (refusing paths that escape it) and checks every file
/// against the manifest. Returns the manifest and the files that do not match it.
pub fn extract(archive: impl Read, dest: &Path) -> io::Result<(Vec<ManifestFile>, Vec<Mismatch>)> {
    let decoder = zstd::Decoder::new(archive)?;
    let mut tar = tar::Archive::new(decoder);
    let mut hashes = std::collections::HashMap::new();
    let mut manifest: Option<Vec<ManifestFile>> = None;
    let mut last_good: Option<String> = None;
    for entry in tar.entries()? {
        let mut entry = entry.map_err(|e| damaged(&after(last_good.as_deref()), e))?;
        let rel = entry.path()?.to_string_lossy().into_owned();
        if rel == MANIFEST_NAME {
            let mut json = Vec::new();
            entry.read_to_end(&mut json).map_err(|e| damaged("its manifest", e))?;
            manifest = Some(serde_json::from_slice(&json).map_err(|e| damaged("its manifest", io::Error::other(e)))?);
            continue;
        }
        let safe = Path::new(&rel).components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{rel}: path escapes the target")));
        }
        let target = dest.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut w = HashWriter::new(File::create(&target)?);
        io::copy(&mut entry, &mut w).map_err(|e| damaged(&rel, e))?;
        let (file, sha, _) = w.finish();
        file.sync_all()?;
        last_good = Some(rel.clone());
        hashes.insert(rel, sha);
    }
    // Read to the end of the zstd frame so its checksum is checked.
    let trailer = io::copy(&mut tar.into_inner(), &mut io::sink());
    let manifest = manifest.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the archive has no manifest"))?;
    let mut mismatches = Vec::new();
    for f in &manifest {
        match hashes.get(&f.path) {
            None => mismatches.push(Mismatch { path: f.path.clone(), reason: "missing from the archive".into() }),
            Some(sha) if *sha != f.sha256 => mismatches.push(Mismatch {
                path: f.path.clone(),
                reason: format!("sha256 {sha} does not match the manifest's {}", f.sha256),
            }),
            Some(_) => {}
        }
    }
    // A damaged frame whose damage shows in a file's hash is reported per file; otherwise as a whole.
    if let Err(e) = trailer
        && mismatches.is_empty()
    {
        return Err(damaged(&after(last_good.as_deref()), e));
    }
    Ok((manifest, mismatches))
}

/// What an extraction tells its progress callback as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extracted {
    /// More bytes of the file being written (told every `PROGRESS_STEP`, and at its end).
    Bytes(u64),
    /// The file is written and intact.
    File,
    /// The file was damaged and removed: the bytes told for it are taken back.
    Discarded(u64),
}

/// A large file's progress is told in steps of this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// Tells `on` of the bytes written through it, a step at a time.
struct Told<'a, W> {
    inner: W,
    pending: u64,
    told: u64,
    on: &'a dyn Fn(Extracted),
}

impl<W: Write> Write for Told<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pending += n as u64;
        if self.pending >= PROGRESS_STEP {
            (self.on)(Extracted::Bytes(self.pending));
            self.told += std::mem::take(&mut self.pending);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Extracts only the files in `wanted` (relative path → expected sha256) from a package's tar
/// stream (already decompressed: see `unpack::ahead`), each to `dest_of(path)`, written with
/// mode 0600 and checked as it is written. Stops reading once every wanted file was seen.
/// Returns the files written intact and those that are damaged (a damaged file is removed
/// again); `on` is told the bytes as they are written and each file's end (progress).
pub fn extract_selected(
    tar_stream: impl Read,
    dest_of: &dyn Fn(&str) -> std::path::PathBuf,
    wanted: &std::collections::HashMap<String, String>,
    on: &dyn Fn(Extracted),
) -> io::Result<(Vec<String>, Vec<Mismatch>)> {
    let mut tar = tar::Archive::new(tar_stream);
    let (mut written, mut bad) = (Vec::new(), Vec::new());
    let mut last_good: Option<String> = None;
    for entry in tar.entries()? {
        if written.len() + bad.len() == wanted.len() {
            break;
        }
        let mut entry = entry.map_err(|e| damaged(&after(last_good.as_deref()), e))?;
        let rel = entry.path()?.to_string_lossy().into_owned();
        let Some(expected) = wanted.get(&rel) else { continue };
        let target = dest_of(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&target)?;
        let mut w = HashWriter::new(Told { inner: file, pending: 0, told: 0, on });
        let copied = io::copy(&mut entry, &mut w);
        let (told, sha, _) = w.finish();
        drop(told.inner);
        match copied {
            // Not synced here: the restore syncs the target's filesystem once at the end.
            Ok(_) if sha == *expected => {
                last_good = Some(rel.clone());
                written.push(rel);
                if told.pending > 0 {
                    on(Extracted::Bytes(told.pending));
                }
                on(Extracted::File);
            }
            outcome => {
                if told.told > 0 {
                    on(Extracted::Discarded(told.told));
                }
                let _ = std::fs::remove_file(&target);
                let reason = match outcome {
                    Err(e) => format!("unreadable in the archive: {e}"),
                    Ok(_) => format!("sha256 {sha} does not match the catalog's {expected}"),
                };
                bad.push(Mismatch { path: rel, reason });
            }
        }
    }
    let seen: HashSet<&String> = written.iter().chain(bad.iter().map(|m| &m.path)).collect();
    let missing: Vec<Mismatch> = wanted
        .keys()
        .filter(|path| !seen.contains(path))
        .map(|path| Mismatch { path: path.clone(), reason: "missing from the archive".into() })
        .collect();
    bad.extend(missing);
    Ok((written, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_hashes_and_nested_paths() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/deep.txt"), b"deep").unwrap();
        std::fs::write(src.path().join("empty.bin"), b"").unwrap();
        let files = vec!["a/b/deep.txt".to_owned(), "empty.bin".to_owned(), "gone.txt".to_owned()];
        let mut archive = Vec::new();
        let mut read = 0;
        let built = build(src.path(), &files, &mut archive, 3, &mut |n| read += n).unwrap();
        assert_eq!(read, 4);
        assert_eq!(built.missing, ["gone.txt"]);
        assert_eq!(built.size, archive.len() as u64);
        assert_eq!(built.sha256, sha256_of(archive.as_slice()).unwrap().0);
        assert_eq!(built.manifest[0].sha256, sha256_of(&b"deep"[..]).unwrap().0);

        let dest = tempfile::tempdir().unwrap();
        let (manifest, bad) = extract(archive.as_slice(), dest.path()).unwrap();
        assert!(bad.is_empty());
        assert_eq!(manifest.len(), 2);
        assert_eq!(std::fs::read(dest.path().join("a/b/deep.txt")).unwrap(), b"deep");
        assert_eq!(std::fs::read(dest.path().join("empty.bin")).unwrap(), b"");

        // One flipped byte anywhere is caught: by a file's hash (named), or by the frame
        // checksum (the place named).
        for at in [0, archive.len() / 3, archive.len() / 2, archive.len() - 5] {
            let mut bad = archive.clone();
            bad[at] ^= 0xff;
            match extract(bad.as_slice(), tempfile::tempdir().unwrap().path()) {
                Ok((_, mismatches)) => assert!(!mismatches.is_empty(), "byte {at}: damage not found"),
                Err(e) => assert!(e.to_string().contains("damaged") || e.to_string().contains("manifest"), "{e}"),
            }
        }
    }

    #[test]
    fn every_file_comes_back_from_its_range_alone() {
        let src = tempfile::tempdir().unwrap();
        let long = format!("{}/{}.txt", "d".repeat(120), "n".repeat(150)); // a GNU long-name entry
        std::fs::create_dir_all(src.path().join("d".repeat(120))).unwrap();
        let mut contents = vec![
            ("big.bin".to_owned(), (0..1_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()),
            (long, b"behind a long name".to_vec()),
            ("empty".to_owned(), Vec::new()),
            ("tail.txt".to_owned(), "tail ".repeat(200_000).into_bytes()),
        ];
        contents.sort();
        for (rel, bytes) in &contents {
            std::fs::write(src.path().join(rel), bytes).unwrap();
        }
        let files: Vec<String> = contents.iter().map(|(rel, _)| rel.clone()).collect();
        let mut archive = Vec::new();
        let built = build(src.path(), &files, &mut archive, 3, &mut |_| {}).unwrap();
        let dest = tempfile::tempdir().unwrap();
        for (f, (rel, bytes)) in built.manifest.iter().zip(&contents) {
            let r = f.range.expect("every packaged file has a range");
            let slice = &archive[r.offset as usize..(r.offset + r.length) as usize];
            let mut stream = zstd::Decoder::new(slice).unwrap();
            io::copy(&mut (&mut stream).take(r.skip), &mut io::sink()).unwrap();
            let wanted = std::collections::HashMap::from([(rel.clone(), f.sha256.clone())]);
            let dest_of = |p: &str| dest.path().join(format!("len-{}", p.len()));
            let told = std::cell::RefCell::new(Vec::new());
            let (written, bad) = extract_selected(stream, &dest_of, &wanted, &|e| told.borrow_mut().push(e)).unwrap();
            assert!(bad.is_empty() && written == [rel.clone()], "{rel}: {bad:?}");
            assert_eq!(std::fs::read(dest_of(rel)).unwrap(), *bytes, "{rel}");
            let told = told.into_inner();
            let sum: u64 = told.iter().map(|e| if let Extracted::Bytes(n) = e { *n } else { 0 }).sum();
            assert_eq!((sum, told.last()), (bytes.len() as u64, Some(&Extracted::File)), "{rel}: {told:?}");
            // A large file is told in steps as it is written, not only at its end.
            let steps = told.iter().filter(|e| matches!(e, Extracted::Bytes(_))).count() as u64;
            assert!(steps >= (bytes.len() as u64).div_ceil(PROGRESS_STEP), "{rel}: {told:?}");
        }
    }

    #[test]
    fn files_that_look_encrypted_are_flagged_from_the_read_itself() {
        let src = tempfile::tempdir().unwrap();
        // 200 KiB: pseudo-random bytes up front (only the first 64 KiB are sampled), then text.
        let mut noisy: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        noisy.extend(std::iter::repeat_n(b'a', 136 * 1024));
        std::fs::write(src.path().join("noisy.bin"), &noisy).unwrap();
        std::fs::write(src.path().join("plain.txt"), "hello hello hello ".repeat(10_000)).unwrap();
        let files = vec!["noisy.bin".to_owned(), "plain.txt".to_owned()];
        let built = build(src.path(), &files, std::io::sink(), 3, &mut |_| {}).unwrap();
        assert_eq!(built.high_entropy, HashSet::from(["noisy.bin".to_owned()]));
        // The same verdict as sampling the file on its own.
        for rel in &files {
            let alone = crate::safety::entropy_of(&src.path().join(rel)).unwrap();
            assert_eq!(is_high_entropy(alone), built.high_entropy.contains(rel), "{rel}: {alone}");
        }
    }
}
