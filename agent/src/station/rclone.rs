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
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    StationError::ToolMissing { station: self.id.clone(), tool: "rclone".into() }
                }
                _ => failed(&self.id, e),
            })?;
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

    pub async fn fetch(&self, tool_ref: &str, dest: &Path) -> Result<()> {
        let mut cmd = Command::new("rclone");
        cmd.arg("copyto").arg(self.target(tool_ref)).arg(dest);
        run_tool(&self.id, &mut cmd, "rclone").await.map(|_| ())
    }
}
