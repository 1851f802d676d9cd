//! A restic repository, written by the real `restic`: the archive goes in through
//! `backup --stdin`, so what restic stores is byte-for-byte the package, and `restic dump`
//! gives it back for measuring and restoring.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::{OnBytes, Result, StationError, failed, run_tool};
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

    /// Checks restic exists and initialises the repository on first use.
    pub async fn check(&self) -> Result<()> {
        run_tool(&self.id, Command::new("restic").arg("version"), "restic").await?;
        if run_tool(&self.id, self.cmd().args(["cat", "config"]), "restic").await.is_err() {
            run_tool(&self.id, self.cmd().arg("init"), "restic").await?;
        }
        Ok(())
    }

    /// `restic backup --stdin --json`; status lines become progress. Returns `SNAPSHOT:FILE`.
    pub async fn put(&self, owner: &str, package_id: &str, archive: &Path, on_bytes: OnBytes<'_>) -> Result<String> {
        let name = format!("{package_id}.tar.zst");
        let mut child = self
            .cmd()
            // The archive is zstd already: restic compressing it again only costs CPU.
            .args(["--compression", "off"])
            .args(["backup", "--json", "--stdin", "--stdin-filename", &name, "--host", owner])
            .args(["--tag", "edgebackup", "--tag", &format!("package:{package_id}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_err(e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut file = tokio::fs::File::open(archive).await.map_err(|e| failed(&self.id, e))?;
        let feed = async move {
            tokio::io::copy(&mut file, &mut stdin).await?;
            stdin.shutdown().await
        };
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let read = async {
            let mut snapshot = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                match v["message_type"].as_str() {
                    Some("status") => {
                        if let Some(b) = v["bytes_done"].as_u64() {
                            on_bytes(b);
                        }
                    }
                    Some("summary") => snapshot = v["snapshot_id"].as_str().map(str::to_owned),
                    _ => {}
                }
            }
            snapshot
        };
        let (fed, snapshot) = tokio::join!(feed, read);
        let out = child.wait_with_output().await.map_err(|e| failed(&self.id, e))?;
        if !out.status.success() {
            return Err(failed(
                &self.id,
                format!("restic backup failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            ));
        }
        fed.map_err(|e| failed(&self.id, format!("feeding restic: {e}")))?;
        let snapshot = snapshot.ok_or_else(|| failed(&self.id, "restic printed no snapshot id"))?;
        Ok(format!("{snapshot}:{name}"))
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
        run_tool(&self.id, self.cmd().args(["forget", "--prune", snapshot]), "restic").await.map(|_| ())
    }

    pub async fn integrity(&self) -> Result<()> {
        run_tool(&self.id, self.cmd().arg("check"), "restic").await.map(|_| ())
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
