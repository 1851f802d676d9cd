//! The Edge Backup agent: watches folders, packages and moves the bytes to stations, verifies
//! every copy, and keeps the catcher informed over one bidirectional stream with a durable outbox.

pub mod archive;
pub mod catalog;
pub mod command_progress;
pub mod commands;
pub mod config;
pub mod credential;
pub mod daemon;
pub mod engine;
pub mod frames;
pub mod link;
pub mod metrics;
pub mod preflight;
pub mod report;
pub mod restore;
pub mod safety;
pub mod scan;
pub mod scrub;
pub mod state;
pub mod station;
pub mod unpack;
