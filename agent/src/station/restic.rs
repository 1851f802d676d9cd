//! A restic repository, written by the real `restic`: the archive goes in through
//! `backup --stdin`, so what restic stores is byte-for-byte the package, and `restic dump`
//! gives it back for measuring and restoring. The engine can feed restic while it builds the
//! archive (`Restic::feed`), so packaging and storing overlap.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::ahead::Ahead;
use super::{Result, StationError, failed, run_tool};
use crate::archive::HashWriter;
use crate::config::StationConfig;

pub struct Restic {
    pub id: String,
    pub repo: String,
    password_file: PathBuf,
}

impl Restic {
    pub fn new(c: &StationConfig) -> Self {
        Self { id: c.id.clone(), repo: c.uri.clone(), password_file: c.password_file.clone().unwrap_or_default() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("restic");
        c.arg("--repo").arg(&self.repo).env("RESTIC_PASSWORD_FILE", &self.password_file).kill_on_drop(true);
        c
    }

    fn spawn_err(&self, e: std::io::Error) -> StationError {
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                StationError::ToolMissing { station: self.id.clone(), tool: "restic".into() }
            }
            _ => failed(&self.id, e),
        }
    }

    /// The repository's directory when it is on a local path (`/path` or `local:/path`).
    fn local_dir(&self) -> Option<&Path> {
        let path = Path::new(self.repo.strip_prefix("local:").unwrap_or(&self.repo));
        path.is_absolute().then_some(path)
    }

    /// Opens the repository with its password (restic's key derivation: slow, but the point);
    /// a missing repository is created only when `init`.
    pub async fn preflight(&self, init: bool) -> Result<String> {
        run_tool(&self.id, Command::new("restic").arg("version"), "restic").await?;
        let out = self.cmd().args(["cat", "config"]).output().await.map_err(|e| self.spawn_err(e))?;
        if out.status.success() {
            return Ok(format!("repository {} opens with its password", self.repo));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("wrong password") || stderr.contains("no key found") {
            return Err(failed(
                &self.id,
                format!("wrong password for repository {} (password_file {})", self.repo, self.password_file.display()),
            ));
        }
        let missing = stderr.contains("does not exist")
            || stderr.contains("Is there a repository")
            || stderr.contains("no such file or directory");
        if !missing {
            return Err(failed(&self.id, format!("restic cannot open {}: {}", self.repo, stderr.trim())));
        }
        if !init {
            return Err(failed(&self.id, format!("no repository at {}: {}", self.repo, super::INIT_HINT)));
        }
        run_tool(&self.id, self.cmd().arg("init"), "restic").await?;
        Ok(format!("repository {} created", self.repo))
    }

    /// Checks restic exists and initialises the repository on first use. Opening a repository
    /// costs restic's key derivation (0.7 s on a small machine), so unless `thorough`, a local
    /// one that exists is taken as it is: a wrong password then fails the first backup.
    pub async fn check(&self, thorough: bool) -> Result<()> {
        run_tool(&self.id, Command::new("restic").arg("version"), "restic").await?;
        if !thorough && self.local_dir().is_some_and(|dir| dir.join("config").is_file()) {
            return Ok(());
        }
        if run_tool(&self.id, self.cmd().args(["cat", "config"]), "restic").await.is_err() {
            run_tool(&self.id, self.cmd().arg("init"), "restic").await?;
        }
        Ok(())
    }

    /// Starts `restic backup --stdin` for package `package_id`; what is written to the returned
    /// writer is stored as the package's archive once the writer is dropped and `Feed::finish`
    /// is awaited.
    pub fn feed(&self, owner: &str, package_id: &str) -> Result<(Feed, Ahead)> {
        let name = format!("{package_id}.tar.zst");
        let (reader, writer) = std::io::pipe().map_err(|e| failed(&self.id, e))?;
        let mut child = {
            // The command holds the pipe's read end until it is dropped: restic would never see EOF.
            let mut cmd = self.cmd();
            // The archive is zstd already: restic compressing it again only costs CPU.
            cmd.args(["--compression", "off"])
                .args(["backup", "--json", "--stdin", "--stdin-filename", &name, "--host", owner])
                .args(["--tag", "edgebackup", "--tag", &format!("package:{package_id}")])
                .stdin(Stdio::from(reader))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().map_err(|e| self.spawn_err(e))?
        };
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let summary = tokio::spawn(async move {
            let mut summary = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if v["message_type"] == "summary" {
                    let snapshot = v["snapshot_id"].as_str().map(str::to_owned);
                    summary = snapshot.map(|s| (s, v["total_bytes_processed"].as_u64().unwrap_or(0)));
                }
            }
            summary
        });
        let writer = Ahead::new(writer).map_err(|e| failed(&self.id, e))?;
        Ok((Feed { station: self.id.clone(), child, name, summary }, writer))
    }

    /// The newest snapshot tagged with the package.
    pub async fn locate(&self, package_id: &str) -> Result<String> {
        let tag = format!("package:{package_id}");
        let out = run_tool(&self.id, self.cmd().args(["snapshots", "--json", "--tag", &tag]), "restic").await?;
        let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let id = snapshots
            .last()
            .and_then(|s| s["id"].as_str())
            .ok_or_else(|| failed(&self.id, format!("no snapshot holds package {package_id}")))?;
        Ok(format!("{id}:{package_id}.tar.zst"))
    }

    /// Forgets the snapshot and prunes its data.
    pub async fn delete(&self, tool_ref: &str) -> Result<()> {
        let (snapshot, _) = self.split(tool_ref)?;
        self.exclusive(&["forget", "--prune", snapshot]).await
    }

    pub async fn integrity(&self) -> Result<()> {
        self.exclusive(&["check"]).await
    }

    /// Runs a restic command that takes the repository's exclusive lock. A restic killed
    /// mid-run (an agent's upload on SIGKILL or power loss) leaves its lock behind, and every
    /// exclusive command then fails; `restic unlock` removes only locks restic itself calls
    /// stale (their process gone from this host, or not refreshed for 30 minutes), never a live
    /// one, so the command is tried once more after it, and the removal is logged.
    async fn exclusive(&self, args: &[&str]) -> Result<()> {
        match run_tool(&self.id, self.cmd().args(args), "restic").await {
            Err(StationError::Failed { message, .. }) if message.contains("already locked") => {
                run_tool(&self.id, self.cmd().arg("unlock"), "restic").await?;
                // Still locked: a live restic holds it, and the error says so.
                run_tool(&self.id, self.cmd().args(args), "restic").await?;
                tracing::warn!(
                    station = %self.id,
                    repo = %self.repo,
                    "removed a stale restic lock left by an interrupted run (restic unlock leaves live locks alone)"
                );
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    fn split<'a>(&self, tool_ref: &'a str) -> Result<(&'a str, &'a str)> {
        tool_ref.split_once(':').ok_or_else(|| failed(&self.id, format!("{tool_ref:?} is not SNAPSHOT:FILE")))
    }

    /// sha256 of `restic dump`, streamed (never held in memory).
    pub async fn measure(&self, tool_ref: &str) -> Result<String> {
        let (snapshot, name) = self.split(tool_ref)?;
        let mut child = self
            .cmd()
            .args(["dump", snapshot, &format!("/{name}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_err(e))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut hasher = HashWriter::new(std::io::sink());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut stdout, &mut buf).await.map_err(|e| failed(&self.id, e))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut hasher, &buf[..n]).map_err(|e| failed(&self.id, e))?;
        }
        let out = child.wait_with_output().await.map_err(|e| failed(&self.id, e))?;
        if !out.status.success() {
            return Err(failed(
                &self.id,
                format!("restic dump failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        Ok(hasher.finish().1)
    }

    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        let (snapshot, name) = self.split(tool_ref)?;
        let file = std::fs::File::create(dest).map_err(|e| failed(&self.id, e))?;
        let mut cmd = self.cmd();
        cmd.args(["dump", snapshot, &format!("/{name}")]).stdout(Stdio::from(file)).stderr(Stdio::piped());
        let out =
            cmd.spawn().map_err(|e| self.spawn_err(e))?.wait_with_output().await.map_err(|e| failed(&self.id, e))?;
        if !out.status.success() {
            return Err(failed(
                &self.id,
                format!("restic dump failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        Ok(())
    }
}

/// A running `restic backup --stdin` (see `Restic::feed`).
pub struct Feed {
    station: String,
    child: tokio::process::Child,
    name: String,
    summary: tokio::task::JoinHandle<Option<(String, u64)>>,
}

impl Feed {
    /// Waits for restic to save the snapshot (after the pipe was closed) and checks that it
    /// stored all `sent` bytes. Returns `SNAPSHOT:FILE`.
    pub async fn finish(self, sent: u64) -> Result<String> {
        let summary = self.summary.await.map_err(|e| failed(&self.station, e))?;
        let out = self.child.wait_with_output().await.map_err(|e| failed(&self.station, e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(failed(&self.station, format!("restic backup failed: {}", stderr.trim())));
        }
        let (snapshot, stored) = summary.ok_or_else(|| failed(&self.station, "restic printed no snapshot id"))?;
        if stored != sent {
            return Err(failed(&self.station, format!("restic stored {stored} bytes of the {sent} it was sent")));
        }
        Ok(format!("{snapshot}:{}", self.name))
    }

    /// Kills restic before it can see the end of a broken archive (it would save it as a
    /// snapshot); returns `why`, with what restic said if it had failed first.
    pub async fn abort(mut self, why: &str) -> StationError {
        let _ = self.child.start_kill();
        let stderr = self.child.wait_with_output().await.map(|o| o.stderr).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        match stderr.trim() {
            "" => failed(&self.station, why),
            said => failed(&self.station, format!("{why}; restic: {said}")),
        }
    }
}
