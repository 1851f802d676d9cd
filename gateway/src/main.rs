//! The grpc-web gateway; filled in by its own issue.
fn main() {
    eprintln!("gateway: not built yet; see issue 4");
    std::process::exit(2);
}
