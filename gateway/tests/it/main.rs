//! Gateway integration tests: the real gateway and catcher binaries on ephemeral ports.

mod browser;
mod grpc_web;
mod harness;
mod http;
mod metrics;
mod replicas;
mod session;
mod tls;
