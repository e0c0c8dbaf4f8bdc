//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use tokenlab_migrations::{Migrator, MigratorTrait as _};

/// Connects and runs every pending migration.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_file_path(url)
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("creating {}: {e}", dir.display())))?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // A SQLite connection cannot die idle in the pool, so testing it as it comes out is only
        // one more round trip to its worker thread on every statement (sqlx pings it anyway as it
        // goes back). A PostgreSQL connection can (a restarted server, a killed backend): it is
        // still tested, so that a dead one is replaced rather than failing a request.
        .test_before_acquire(!url.starts_with("sqlite:"))
        // WAL lets readers proceed during a write; the busy timeout makes concurrent writers queue
        // instead of failing with "database is locked", which one-time tokens rely on.
        // `synchronous=FULL`: a commit is on disk before it is acknowledged. With `NORMAL` a power
        // loss could undo the last commits — an acknowledged logout, revocation or spent one-time
        // token coming back is exactly what tokenlab promises cannot happen. The price is one
        // fsync per commit.
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options).await?;
    Migrator::up(&db, None).await?;
    crate::queries::count_statements(&mut db);
    Ok(db)
}

/// The file a `sqlite:` URL names, read as sqlx reads it (percent-decoded, query dropped); `None`
/// for another database or an in-memory one.
pub fn sqlite_file_path(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options: SqliteConnectOptions = url.parse().ok()?;
    let path = options.get_filename();
    // sqlx names an in-memory database `file:sqlx-in-memory-N`; `mode=memory` is one too.
    let in_memory = path.to_str().is_some_and(|p| p.starts_with("file:sqlx-in-memory-"))
        || url.contains("mode=memory");
    (!in_memory && !path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::sqlite_file_path;

    #[test]
    fn sqlite_paths() {
        let cases = [
            ("sqlite://data/tokenlab.db", Some("data/tokenlab.db")),
            ("sqlite:///tmp/x.db?mode=rwc", Some("/tmp/x.db")),
            ("sqlite:///tmp/with%20space.db", Some("/tmp/with space.db")),
            ("sqlite:data/x.db", Some("data/x.db")),
            ("sqlite::memory:", None),
            ("sqlite://x.db?mode=memory", None),
            ("postgres://postgres@127.0.0.1/test", None),
        ];
        for (url, expected) in cases {
            let path = sqlite_file_path(url);
            assert_eq!(path.as_deref(), expected.map(std::path::Path::new), "{url}");
        }
    }
}
