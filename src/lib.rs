//! The Edge Backup wire contract (package `edgebackup.v1`), generated from `proto/` at build time.
//!
//! Only service layers and clients use these types; the catcher and the agent convert them to their
//! own domain types at the boundary.
#![forbid(unsafe_code)]

pub mod codec;

/// Generated messages, clients and servers for `edgebackup.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("edgebackup.v1");
}

/// The encoded `FileDescriptorSet` of every proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("edgebackup_descriptor");
