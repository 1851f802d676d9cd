//! Commands run on the catcher's host against its database and data directory: enrollment
//! tokens, revocation, people's tokens, the first admin, the TLS certificate of small installs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::ca::Authority;
use crate::auth::tls::{CertFiles, write_server_cert};
use crate::config::Config;
use crate::domain::Role;
use crate::service::access::{NewToken, create_person_token};
use crate::store::Store;
use crate::watch::Hub;
use crate::writer::{ChannelTested, RevokeAgent, RevokeToken, Writer};

/// Where the first admin token is written.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The catcher's database and a writer on it for one command. The running catcher may be
/// writing too: every write transaction takes SQLite's lock at BEGIN (see the writer), so each
/// waits its turn within the busy timeout instead of failing.
async fn with_writer<T>(config: &Config, f: impl AsyncFn(&Store, &Writer) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let store = crate::server::open_store(config).await?;
    let stop = CancellationToken::new();
    let (writer, task) = Writer::spawn(
        store.db().clone(),
        crate::server::publish_mode(&store, Hub::new(16), crate::watch::Committed::default()),
        Arc::new(Notify::new()),
        crate::server::writer_settings(config),
        stop.clone(),
    );
    let out = f(&store, &writer).await;
    drop(writer);
    stop.cancel();
    let _ = task.await;
    store.close().await?;
    out
}

/// `catcher enroll`: prints a new enrollment token and how to use it.
pub async fn enroll(config: &Config, source: &str, ttl: Duration, uses: u32, mover: bool) -> anyhow::Result<()> {
    let authority = Authority::load_or_create(&config.data_dir.join("ca"))?;
    let (token, t) = with_writer(config, async |_, w| {
        Ok(crate::service::access::create_token(w, source, ttl.as_secs(), uses, mover, "cli").await?)
    })
    .await?;
    let expires = chrono::DateTime::from_timestamp_millis(t.expires_at).map(|d| d.to_rfc3339()).unwrap_or_default();
    let plural = if t.uses_left == 1 { "" } else { "s" };
    println!("Enrollment token for source {} ({} use{plural}, until {expires}):", t.source_id, t.uses_left);
    println!("  {token}");
    println!("Catcher CA fingerprint (SHA-256): {}", authority.fingerprint());
    println!("On the device:");
    println!(
        "  agent enroll --catcher https://HOST:{} --token {token} --ca-fingerprint {}",
        config.listen.port(),
        authority.fingerprint()
    );
    Ok(())
}

/// `catcher agent revoke`.
pub async fn revoke(config: &Config, source: &str) -> anyhow::Result<()> {
    with_writer(config, async |_, w| {
        Ok(w.submit(RevokeAgent { source_id: source.to_owned(), actor: "cli".into() }).await?)
    })
    .await?;
    println!("Revoked every credential of {source}; a running catcher closes its stream within a second.");
    Ok(())
}

/// `catcher tls init`: the CA (if new) and a server certificate for `hosts`.
pub fn tls_init(config: &Config, hosts: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(!hosts.is_empty(), "--host: give at least one name or address the catcher is reached by");
    let authority = Authority::load_or_create(&config.data_dir.join("ca"))?;
    let dir = config.data_dir.join("tls");
    let files = CertFiles { cert: dir.join("server.crt"), key: dir.join("server.key") };
    write_server_cert(&files, &authority, hosts).with_context(|| format!("writing {}", dir.display()))?;
    println!("Server certificate for {} written; in catcher.toml:", hosts.join(", "));
    println!("  tls_cert_file = \"{}\"", files.cert.display());
    println!("  tls_key_file = \"{}\"", files.key.display());
    println!("Agents pin the CA: SHA-256 {}", authority.fingerprint());
    Ok(())
}

/// "90s", "30m", "1h", "7d", or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{text:?}: a number with s, m, h or d, like 1h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(scale)))
}

/// `catcher token create`: prints the new token once.
pub async fn token_create(config: &Config, new: NewToken) -> anyhow::Result<()> {
    let (token, t) = with_writer(config, async |_, w| Ok(create_person_token(w, new.clone(), "cli").await?)).await?;
    let until = t
        .expires_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("until revoked".to_owned(), |d| format!("until {}", d.to_rfc3339()));
    println!("Token {:?} ({}, {until}); shown only now:", t.name, t.role);
    println!("  {token}");
    println!("Use it as `authorization: Bearer <token>` (grpcurl -H), CATCHER_TOKEN for `catcher status`,");
    println!("or sign in to the dashboard with it.");
    Ok(())
}

/// `catcher token list`.
pub async fn token_list(config: &Config) -> anyhow::Result<()> {
    let store = crate::server::open_store(config).await?;
    let tokens = store.person_tokens().await;
    store.close().await?;
    let when = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map_or("-".to_owned(), |d| d.format("%Y-%m-%d %H:%M").to_string())
    };
    println!("{:<24} {:<9} {:<10} {:<17} {:<17} created by", "NAME", "ROLE", "UNREDACTED", "EXPIRES", "REVOKED");
    for t in tokens? {
        let unredacted = if t.unredacted { "yes" } else { "no" };
        println!(
            "{:<24} {:<9} {:<10} {:<17} {:<17} {}",
            t.name,
            t.role.to_string(),
            unredacted,
            when(t.expires_at),
            when(t.revoked_at),
            t.created_by
        );
    }
    Ok(())
}

/// `catcher token revoke`.
pub async fn token_revoke(config: &Config, name: &str) -> anyhow::Result<()> {
    with_writer(config, async |_, w| Ok(w.submit(RevokeToken { name: name.to_owned(), actor: "cli".into() }).await?))
        .await?;
    println!("Revoked {name:?}; a running catcher ends its open calls within a second.");
    Ok(())
}

/// At start: when no valid admin token exists, one is created and written to
/// `data_dir/admin.token` (mode 0600), so a fresh install can be used without another step.
pub async fn ensure_first_admin(config: &Config) -> anyhow::Result<()> {
    // Opening the store migrates it: whatever runs after the catcher's listening line finds both.
    let created = with_writer(config, async |store, w| {
        let tokens = store.person_tokens().await?;
        let now = crate::domain::now_ms();
        if tokens.iter().any(|t| t.role == Role::Admin && t.valid_at(now)) {
            return Ok(None);
        }
        // A revoked "admin" keeps its name: take the next free one.
        let name = (1..)
            .map(|i| if i == 1 { "admin".to_owned() } else { format!("admin-{i}") })
            .find(|n| tokens.iter().all(|t| &t.name != n))
            .expect("a free name");
        let new = NewToken { name, role: Role::Admin, ttl_secs: None, unredacted: true };
        match create_person_token(w, new, "first start").await {
            Ok(created) => Ok(Some(created)),
            // Another replica starting at the same moment made it first.
            Err(crate::error::Error::AlreadyExists(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Some((token, t)) = created else { return Ok(()) };
    let path = config.data_dir.join(ADMIN_TOKEN_FILE);
    edgebackup_common::files::write_private(&path, format!("{token}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        token = %t.name,
        file = %path.display(),
        "no admin existed: created an admin token; sign in with the token in this file, then keep it safe or revoke it"
    );
    Ok(())
}

/// `catcher alert test CHANNEL`: sends a test notification through a configured channel now,
/// journals the outcome, and says how it went; false when it was not delivered.
pub async fn alert_test(config: &Config, name: &str) -> anyhow::Result<bool> {
    let channels = crate::notify::Channels::open(&config.channels).map_err(|e| anyhow::anyhow!("channels: {e}"))?;
    let Some(channel) = channels.get(name) else {
        let known: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!(
            "no channel {name:?} in the config (channels: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        );
    };
    let m = crate::notify::test_message(name, "cli", &crate::notify::catcher_name());
    let (delivered, message) = match channel.send(&m).await {
        Ok(answer) => (true, answer),
        Err(error) => (false, error),
    };
    with_writer(config, async |_, w| {
        let tested =
            ChannelTested { channel: name.to_owned(), delivered, message: message.clone(), actor: "cli".into() };
        Ok(w.submit(tested).await?)
    })
    .await?;
    if delivered {
        println!("{name} ({}): delivered, {message}", channel.target);
    } else {
        println!("{name} ({}): NOT delivered: {message}", channel.target);
    }
    Ok(delivered)
}

/// `catcher db backup --to FILE`: a consistent copy of the SQLite database, taken while the
/// catcher runs, then checked.
pub async fn db_backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    let store = crate::server::open_store(config).await?;
    store.backup_to(to).await?;
    store.close().await?;
    let copy = Store::open_read_only(to).await?;
    let check = copy.check().await?;
    copy.close().await?;
    print_check(&to.display().to_string(), &check);
    anyhow::ensure!(check.ok(), "the copy at {} does not check out", to.display());
    Ok(())
}

/// `catcher db check [--file FILE]`: checks a backup (or the configured database) without
/// changing it. Answers whether it checks out.
pub async fn db_check(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<bool> {
    let (what, store) = match file {
        Some(f) => (f.display().to_string(), Store::open_read_only(f).await?),
        None => (crate::config::redact_url(&config.database_url), Store::connect(&config.database_url, 1).await?),
    };
    let check = store.check().await?;
    store.close().await?;
    print_check(&what, &check);
    Ok(check.ok())
}

/// `catcher db restore --from FILE`: puts a checked SQLite backup in place of the configured
/// database, which is kept beside it. Refuses while a catcher is running on it.
pub async fn db_restore(config: &Config, from: &std::path::Path) -> anyhow::Result<()> {
    let target = crate::store::sqlite_file(&config.database_url)
        .context("db restore replaces a SQLite file; on PostgreSQL use pg_restore (deploy/README.md)")?;
    let backup = Store::open_read_only(from).await?;
    let check = backup.check().await?;
    backup.close().await?;
    print_check(&from.display().to_string(), &check);
    anyhow::ensure!(check.ok(), "{} does not check out; nothing was changed", from.display());
    if target.exists() {
        let current = Store::open_read_only(&target).await?;
        let beat = current.last_heartbeat().await;
        current.close().await?;
        let timeout = i64::try_from(config.replica_timeout_secs).unwrap_or(i64::MAX / 1000) * 1000;
        if let Some(at) = beat {
            let ago = crate::domain::now_ms() - at;
            anyhow::ensure!(
                ago > timeout,
                "a catcher is running on {} (its heartbeat is {} s old): stop it first; nothing was changed",
                target.display(),
                ago / 1000
            );
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", target.display()));
            if file.exists() {
                let aside = format!("{}.before-restore-{stamp}{suffix}", target.display());
                std::fs::rename(&file, &aside).with_context(|| format!("keeping {} as {aside}", file.display()))?;
                println!("kept {} as {aside}", file.display());
            }
        }
    }
    // Copied under a temporary name and synced, then renamed: never half a database in place.
    let partial = target.with_extension("restoring");
    std::fs::copy(from, &partial).with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &target)?;
    println!("restored {} from {}; start the catcher", target.display(), from.display());
    Ok(())
}

fn print_check(what: &str, c: &crate::store::backup::Check) {
    println!("database:  {what}");
    println!("integrity: {}", c.integrity);
    match &c.journal_broken {
        None => println!("journal:   {} events, chain intact", c.journal_events),
        Some((seq, why)) => println!("journal:   BROKEN at event {seq}: {why}"),
    }
    println!("sources:   {}", c.sources);
    println!("packages:  {}", c.packages);
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(super::parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(super::parse_duration("2d").unwrap().as_secs(), 172_800);
        assert!(super::parse_duration("1w").is_err());
        assert!(super::parse_duration("h").is_err());
    }
}
