//! Compiles `proto/` with protox (pure Rust, no system protoc) and tonic's code generator.
//! The encoded descriptor set goes to OUT_DIR too, for server reflection.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "edgebackup/v1/common.proto",
    "edgebackup/v1/commands.proto",
    "edgebackup/v1/catalog.proto",
    "edgebackup/v1/agent.proto",
    "edgebackup/v1/packages.proto",
    "edgebackup/v1/sources.proto",
    "edgebackup/v1/policy.proto",
    "edgebackup/v1/journal.proto",
    "edgebackup/v1/alerts.proto",
    "edgebackup/v1/status.proto",
    "edgebackup/v1/access.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("edgebackup_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `AgentService.Connect` would collide with the generated `connect` constructor;
        // clients are built from a `tonic::transport::Channel` instead.
        .build_transport(false)
        // Small initial stream buffers: see src/codec.rs.
        .codec_path("crate::codec::CompactCodec")
        .compile_fds(fds)?;
    Ok(())
}
