//! What a process costs, read from /proc: resident memory from `/proc/<pid>/status` and CPU time
//! from `/proc/<pid>/stat`, sampled over a run; and which process listens on a loopback port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub rss_kib: u64,
    /// Peak resident set the kernel has seen (VmHWM).
    pub hwm_kib: u64,
    pub threads: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn read(pid: u32) -> std::io::Result<Reading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse(&status, &stat).ok_or_else(|| std::io::Error::other(format!("cannot parse /proc/{pid}/stat or status")))
}

fn parse(status: &str, stat: &str) -> Option<Reading> {
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    // After it come field 3 (state), so utime (14) is at index 11, stime (15) at 12, threads (20) at 17.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Reading {
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:").unwrap_or(0),
        threads: num(17).unwrap_or(0),
        cpu_ticks: num(11)? + num(12)?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The process listening on TCP `port` (IPv4 or IPv6), found through its socket inode.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else { continue };
            let listening = *state == "0A";
            let on_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port);
            if listening && on_port {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| link.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// What a process cost over a run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Usage {
    pub pid: u32,
    pub samples: u64,
    pub rss_mib_start: f64,
    pub rss_mib_peak: f64,
    pub rss_mib_end: f64,
    /// Whole-life peak (VmHWM), including start-up.
    pub hwm_mib: f64,
    pub threads_end: u64,
    /// Average CPU over the sampled window, in percent of one core.
    pub cpu_percent_avg: f64,
    /// Busiest sampling interval, in percent of one core.
    pub cpu_percent_peak: f64,
    pub window_s: f64,
}

/// Samples a process every `every` until stopped.
pub struct Monitor {
    usage: Arc<Mutex<Usage>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    /// Starts sampling; fails if the process cannot be read now.
    pub fn start(pid: u32, every: Duration) -> std::io::Result<Self> {
        let first = read(pid)?;
        let tck = clk_tck() as f64;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let usage = Arc::new(Mutex::new(Usage {
            pid,
            samples: 1,
            rss_mib_start: mib(first.rss_kib),
            rss_mib_peak: mib(first.rss_kib),
            rss_mib_end: mib(first.rss_kib),
            hwm_mib: mib(first.hwm_kib),
            threads_end: first.threads,
            ..Usage::default()
        }));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let shared = usage.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let (mut last_at, mut last_ticks) = (started, first.cpu_ticks);
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                let stopping = tokio::select! {
                    _ = ticker.tick() => false,
                    _ = stopped.changed() => true,
                };
                let Ok(r) = read(pid) else { break };
                let now = Instant::now();
                let dt = now.duration_since(last_at).as_secs_f64();
                let mut u = shared.lock().unwrap_or_else(|e| e.into_inner());
                u.samples += 1;
                u.rss_mib_end = mib(r.rss_kib);
                u.rss_mib_peak = u.rss_mib_peak.max(u.rss_mib_end);
                u.hwm_mib = mib(r.hwm_kib);
                u.threads_end = r.threads;
                if dt > 0.05 {
                    let pct = (r.cpu_ticks.saturating_sub(last_ticks)) as f64 / tck / dt * 100.0;
                    u.cpu_percent_peak = u.cpu_percent_peak.max(pct);
                    (last_at, last_ticks) = (now, r.cpu_ticks);
                }
                let total = now.duration_since(started).as_secs_f64();
                u.window_s = total;
                if total > 0.0 {
                    u.cpu_percent_avg = (r.cpu_ticks.saturating_sub(first.cpu_ticks)) as f64 / tck / total * 100.0;
                }
                drop(u);
                if stopping {
                    break;
                }
            }
        });
        Ok(Self { usage, stop, task })
    }

    /// Takes a last sample and returns the totals.
    pub async fn finish(self) -> Usage {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files_with_awkward_names() {
        let status = "Name:\tcatcher\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\nThreads:\t5\n";
        let stat = "123 (my (odd) name) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 1000 2560";
        let r = parse(status, stat).expect("parses");
        assert_eq!(r, Reading { rss_kib: 10240, hwm_kib: 20480, threads: 7, cpu_ticks: 300 });
        assert_eq!(parse("", stat), None);
        assert_eq!(parse(status, "garbage"), None);
    }

    #[test]
    fn reads_itself() {
        let r = read(std::process::id()).expect("own /proc entry");
        assert!(r.rss_kib > 0);
        assert!(clk_tck() > 0);
    }
}
