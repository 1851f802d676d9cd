//! Agent end-to-end tests: the real agent and catcher binaries, real files, real stations
//! (local directories, the real restic and rclone).

mod alerts;
mod backup;
mod faults;
mod harness;
mod history;
mod lifecycle;
mod metrics;
mod protection;
mod recovery;
mod redaction;
mod replicas;
mod safety;
mod tools;
mod versions;
