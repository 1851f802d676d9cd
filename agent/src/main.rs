//! The edge agent daemon; filled in by its own issue.
fn main() {
    eprintln!("agent: not built yet; see issue 3");
    std::process::exit(2);
}
