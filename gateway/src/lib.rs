//! The Edge Backup gateway: the dashboard and grpc-web, on one origin, in front of the catcher.

pub mod assets;
pub mod config;
pub mod health;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod session;
pub mod tls;
pub mod upstream;
