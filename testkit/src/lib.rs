//! Test support shared by the packages' integration tests: locate the workspace's built
//! binaries and run them as real processes on ephemeral loopback ports, wait for conditions,
//! and make test databases.

pub mod db;
pub mod prometheus;
pub mod receivers;

mod process;

pub use process::{Enrollment, Proc, Ready, Spec, bin};

use std::time::Duration;

/// Polls `f` until it returns Some, for up to `secs` seconds; gives up naming `what` it awaited.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} was not met within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
