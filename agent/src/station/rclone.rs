//! An rclone remote (any backend rclone speaks, S3 included), written by the real `rclone`.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{OnBytes, Result, StationError, failed, object_name, run_tool};
use crate::config::StationConfig;

pub struct Rclone {
    pub id: String,
    remote: String,
}

impl Rclone {
    pub fn new(c: &StationConfig) -> Self {
        Self { id: c.id.clone(), remote: c.uri.trim_end_matches('/').to_owned() }
    }

    pub fn target(&self, tool_ref: &str) -> String {
        format!("{}/{tool_ref}", self.remote)
    }

    fn spawn_error(&self, e: std::io::Error) -> StationError {
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                StationError::ToolMissing { station: self.id.clone(), tool: "rclone".into() }
            }
            _ => failed(&self.id, e),
        }
    }

    pub async fn preflight(&self, init: bool) -> Result<String> {
        run_tool(&self.id, Command::new("rclone").arg("version"), "rclone").await?;
        // `name:path` needs a configured remote `name` (`:backend:path` and plain paths do not).
        if let Some((name, _)) = self.remote.split_once(':')
            && !name.is_empty()
            && !name.contains('/')
        {
            let out = run_tool(&self.id, Command::new("rclone").arg("listremotes"), "rclone").await?;
            let known = String::from_utf8_lossy(&out.stdout);
            if !known.lines().any(|l| l.trim() == format!("{name}:")) {
                return Err(failed(&self.id, format!("rclone has no remote named {name:?} (see `rclone config`)")));
            }
        }
        let listed = Command::new("rclone")
            .args(["lsjson", "--max-depth", "1", &self.remote])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.spawn_error(e))?;
        if listed.status.success() {
            return Ok(format!("{} is reachable", self.remote));
        }
        let stderr = String::from_utf8_lossy(&listed.stderr);
        if !stderr.contains("directory not found") {
            return Err(failed(&self.id, format!("rclone cannot list {}: {}", self.remote, stderr.trim())));
        }
        if !init {
            return Err(failed(&self.id, format!("{} does not exist: {}", self.remote, super::INIT_HINT)));
        }
        run_tool(&self.id, Command::new("rclone").args(["mkdir", &self.remote]), "rclone").await?;
        Ok(format!("{} created", self.remote))
    }

    pub async fn check(&self) -> Result<()> {
        run_tool(&self.id, Command::new("rclone").arg("version"), "rclone").await?;
        run_tool(&self.id, Command::new("rclone").args(["mkdir", &self.remote]), "rclone").await?;
        Ok(())
    }

    /// `rclone copyto` with JSON stats on stderr, turned into progress.
    pub async fn put(&self, owner: &str, package_id: &str, archive: &Path, on_bytes: OnBytes<'_>) -> Result<String> {
        let rel = object_name(owner, package_id).to_string_lossy().into_owned();
        let mut child = Command::new("rclone")
            .arg("copyto")
            .arg(archive)
            .arg(self.target(&rel))
            .args(["--use-json-log", "--stats", "500ms", "--stats-log-level", "NOTICE", "--retries", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut errors = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) => {
                    if let Some(bytes) = v.pointer("/stats/bytes").and_then(|b| b.as_u64()) {
                        on_bytes(bytes);
                    }
                    if v["level"] == "error" {
                        errors.push(v["msg"].as_str().unwrap_or_default().to_owned());
                    }
                }
                Err(_) => errors.push(line),
            }
        }
        let status = child.wait().await.map_err(|e| failed(&self.id, e))?;
        if !status.success() {
            return Err(failed(&self.id, format!("rclone copyto failed ({status}): {}", errors.join("; "))));
        }
        Ok(rel)
    }

    /// `rclone hashsum sha256 --download`: measured from the stored bytes even on backends
    /// that don't keep sha256 themselves.
    pub async fn measure(&self, tool_ref: &str) -> Result<String> {
        let out = run_tool(
            &self.id,
            Command::new("rclone").args(["hashsum", "sha256", "--download", &self.target(tool_ref)]),
            "rclone",
        )
        .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().next().filter(|h| h.len() == 64).map(str::to_owned).ok_or_else(|| {
            failed(&self.id, format!("{} is missing (rclone hashsum printed {text:?})", self.target(tool_ref)))
        })
    }

    /// `rclone deletefile`; a copy already gone is fine.
    pub async fn delete(&self, tool_ref: &str) -> Result<()> {
        let target = self.target(tool_ref);
        match run_tool(&self.id, Command::new("rclone").args(["deletefile", &target]), "rclone").await {
            Err(StationError::Failed { message, .. }) if message.contains("not found") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `rclone cat --offset --count`: a ranged GET on object stores. The reader fails at the
    /// end when rclone did (a short range is never taken for the whole).
    pub fn open_range(&self, tool_ref: &str, offset: u64, length: u64) -> Result<super::RangeReader> {
        let mut child = std::process::Command::new("rclone")
            .args(["cat", "--offset", &offset.to_string(), "--count", &length.to_string(), "--retries", "1"])
            .arg(self.target(tool_ref))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stdout = child.stdout.take().expect("piped");
        Ok(Box::new(CatReader { child, stdout, left: length }))
    }

    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        let mut cmd = Command::new("rclone");
        cmd.arg("copyto").arg(self.target(tool_ref)).arg(dest);
        run_tool(&self.id, &mut cmd, "rclone").await.map(|_| ())
    }
}

/// The output of `rclone cat`, checked to be as long as asked and rclone to have succeeded.
struct CatReader {
    child: std::process::Child,
    stdout: std::process::ChildStdout,
    left: u64,
}

impl std::io::Read for CatReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.stdout.read(&mut buf[..want])?;
        if n == 0 {
            let mut stderr = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let status = self.child.wait()?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("rclone cat ended {} bytes short ({status}): {}", self.left, stderr.trim()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl Drop for CatReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
