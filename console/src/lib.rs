//! Edge Backup from a shell: clients of a running catcher's public API (gRPC), never of its
//! database. Today `status` (the fleet's status as a report or a live terminal view); the
//! shell's later commands land here too, so the server never links a terminal UI and this crate
//! never links a database driver.
#![forbid(unsafe_code)]

pub mod status;
