//! The Edge Backup catcher: the control plane that tracks sources, packages, placements, rules,
//! config snapshots and the journal, talks to agents over one stream each, and moves packages
//! through the tiers. See docs/ARCHITECTURE.md for the map.
#![deny(unsafe_code)]

pub mod auth;
pub mod change;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod feed;
pub mod journal;
pub mod listener;
pub mod metrics;
pub mod metrics_server;
pub mod notify;
pub mod rules;
pub mod server;
pub mod service;
pub mod status;
pub mod store;
pub mod stream;
pub mod watch;
pub mod workers;
pub mod writer;
