//! Databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database on the
//! server `EDGE_TEST_POSTGRES_URL` names, dropped again when the test ends.
//!
//! A missing PostgreSQL URL fails the test (with how to set it): a variant that cannot run
//! must never pass.

/// Env var naming a PostgreSQL server URL (a database we may `CREATE DATABASE` from).
pub const PG_ENV: &str = "EDGE_TEST_POSTGRES_URL";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// One test's database; a PostgreSQL one is dropped on drop.
pub struct TestDb {
    pub kind: Db,
    pub url: String,
    /// Holds the SQLite file and the test's logs.
    pub dir: tempfile::TempDir,
    /// `(server URL, database name)` of a PostgreSQL database to drop.
    pg: Option<(String, String)>,
}

/// The PostgreSQL server to create test databases on.
pub fn postgres_base() -> String {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{PG_ENV} is not set: the PostgreSQL variant of this test cannot run. \
             Set it, e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/postgres (the README's test command does)"
        ),
    }
}

impl TestDb {
    pub async fn new(kind: Db) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            Db::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("catcher.db").display());
                Self { kind, url, dir, pg: None }
            }
            Db::Postgres => {
                let base = postgres_base();
                let name = format!("ebk_test_{}", uuid::Uuid::now_v7().simple());
                let admin = sea_orm::Database::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("connect to PostgreSQL at {PG_ENV}: {e}"));
                use sea_orm::ConnectionTrait;
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                admin.close().await.ok();
                let (prefix, _) = base.rsplit_once('/').expect("postgres url has a database path");
                let url = format!("{prefix}/{name}");
                Self { kind, url, dir, pg: Some((base, name)) }
            }
        }
    }

    /// A direct connection, for tests that inspect or tamper with rows.
    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(&self.url).await.expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg.take() else { return };
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use sea_orm::ConnectionTrait;
                let admin = sea_orm::Database::connect(&base).await?;
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}
