//! The catcher's layering, checked on its source: each module may use only the layers below it
//! (docs/ARCHITECTURE.md, "Code map"), only the API layers know protobuf, and only the store and
//! the writer know sea-orm. A reference the wrong way fails here, naming file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it may use (itself always).
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("domain", &["error"]),
    ("rules", &["domain", "error"]),
    ("journal", &["domain"]),
    ("change", &["domain", "rules"]),
    ("store", &["domain", "rules", "error", "journal", "change"]),
    ("watch", &["change"]),
    ("status", &["domain", "rules", "error", "store", "watch", "change"]),
    ("metrics", &["domain"]),
    ("writer", &["domain", "rules", "error", "journal", "change", "store", "watch", "metrics"]),
    ("feed", &["domain", "rules", "error", "change", "store", "watch", "writer"]),
    ("notify", &["domain"]),
    ("workers", &["domain", "rules", "error", "journal", "store", "writer", "watch", "metrics", "notify", "feed"]),
    ("config", &["domain", "rules", "error", "notify"]),
    ("listener", &["auth"]),
    ("auth", &["domain", "error", "store", "writer", "config"]),
    (
        "service",
        &[
            "domain", "rules", "error", "journal", "change", "store", "watch", "status", "writer", "workers", "config",
            "auth", "notify",
        ],
    ),
    (
        "stream",
        &[
            "domain", "rules", "error", "journal", "change", "store", "watch", "status", "writer", "workers", "config",
            "auth", "service",
        ],
    ),
    ("tui", &[]),
    ("server", &["*"]),
    ("metrics_server", &["*"]),
    ("cli", &["*"]),
    ("main", &["*"]),
    ("lib", &["*"]),
];

/// Modules that may name the wire contract.
const KNOWS_PROTOBUF: &[&str] = &["service", "stream", "server", "tui", "main"];
/// Modules that may name sea-orm.
const KNOWS_SEA_ORM: &[&str] = &["store", "writer", "error", "server"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "found the catcher's sources in {}", src.display());
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = top.trim_end_matches(".rs").to_owned();
        let may =
            allowed.get(module.as_str()).unwrap_or_else(|| panic!("{module} is not in ALLOWED: place it in a layer"));
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let name: String =
                    rest[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[i + 7..];
                if name.is_empty() || name == module || may.contains(&"*") || may.contains(&name.as_str()) {
                    continue;
                }
                wrong.push(format!("{}:{}: {module} uses crate::{name}", rel.display(), n + 1));
            }
            if code.contains("edgebackup_proto") && !KNOWS_PROTOBUF.contains(&module.as_str()) {
                wrong.push(format!("{}:{}: {module} names the wire contract", rel.display(), n + 1));
            }
            if code.contains("sea_orm") && !KNOWS_SEA_ORM.contains(&module.as_str()) {
                wrong.push(format!("{}:{}: {module} names sea-orm", rel.display(), n + 1));
            }
        }
    }
    assert!(wrong.is_empty(), "references against the layering:\n{}", wrong.join("\n"));
}
