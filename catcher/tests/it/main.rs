//! Integration tests of the catcher: the real binary, real databases, generated clients.

mod agent;
mod alerts;
mod backup;
mod catalog;
mod connections;
mod harness;
mod journal;
mod layers;
mod lifecycle;
mod metrics;
mod projections;
mod reflection;
mod replicas;
mod restores;
mod stream;
mod telemetry;
mod trust;
mod tui;
mod watch;
mod workflow;
