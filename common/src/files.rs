//! Key and certificate files: private ones are created with mode 0600 (never world-readable,
//! not even for an instant) and replaced atomically; a private file others may read is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be read or written, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: readable by others (mode {mode:o}); chmod 600 it", path.display())]
    Insecure { path: PathBuf, mode: u32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io { path: path.to_owned(), source }
}

/// Writes `bytes` to `path` with mode 0600, via a temporary file renamed into place.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, bytes, 0o600)
}

/// Creates `path` holding `bytes` (mode 0600) unless it exists; answers whether this call
/// created it. Safe against another process doing the same at once (catcher replicas starting
/// together on one data directory): exactly one wins, and the file is never seen half written.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<bool, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension(format!("new.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    // A hard link never replaces: the first process's file stays.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes a public file (a certificate) with mode 0644.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic(path, bytes, 0o644)
}

/// Writes `bytes` with `mode` into a fresh temporary file beside `path`, syncs it and renames it
/// into place, creating the directory if needed: readers see the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Reads a private file, refusing one that others may read (a key copied carelessly).
pub fn read_private(path: &Path) -> Result<String, FileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(io(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(FileError::Insecure { path: path.to_owned(), mode: mode & 0o777 });
    }
    std::fs::read_to_string(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_private_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        assert!(create_private(&p, b"first").unwrap());
        assert!(!create_private(&p, b"second").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn private_files_are_0600_and_others_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sub/key.pem");
        write_private(&key, b"secret").unwrap();
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_private(&key).unwrap(), "secret");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&key).unwrap_err().to_string();
        assert!(err.contains("readable by others (mode 644)"), "{err}");
    }
}
