//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnAcquireErr, ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};
use tokenlab_migrations::{Migrator, MigratorTrait as _};

/// How many connections the pool keeps, and how long a request waits for one
/// (`--db-max-connections`, `--db-acquire-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// Connects and runs every pending migration. Every write goes through this handle unless it is
/// one of the few named in [`connect_fail_safe`].
pub async fn connect_and_migrate(url: &str, pool: PoolLimits) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_file_path(url)
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("creating {}: {e}", dir.display())))?;
    }
    // `synchronous=FULL`: a commit is on disk before it is acknowledged. With `NORMAL` a power
    // loss could undo the last commits — an acknowledged logout, revocation or spent one-time
    // token coming back is exactly what tokenlab promises cannot happen. The price is one fsync
    // per commit.
    let mut db = Database::connect(options(url, pool, SqliteSynchronous::Full)).await?;
    Migrator::up(&db, None).await?;
    crate::queries::count_statements(&mut db);
    Ok(db)
}

/// A second handle on the database of `durable` (from [`connect_and_migrate`]), for the writes
/// whose loss in a power cut fails safe: a login's throttle reservations and their
/// settlement, a session's creation, and `still_current`'s no-op update. Lost, they leave a user
/// logged out or a guesser a few more tries after the machine comes back — never an ended
/// credential alive again. Endings (logout, revocation, a spent one-time token, a rotated refresh
/// token) never come here.
///
/// On an SQLite file its commits are not flushed one by one (`synchronous=NORMAL`): they reach the
/// operating system, so they survive the process crashing, and the next commit on `durable` (in
/// WAL mode, one log for both) flushes them with it — so no ending is ever on disk without what
/// was committed before it. A session login then costs no flush at all (ADR 33). Elsewhere
/// (PostgreSQL, an in-memory SQLite database) it is `durable` itself.
pub async fn connect_fail_safe(
    url: &str,
    pool: PoolLimits,
    durable: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if sqlite_file_path(url).is_none() {
        return Ok(durable.clone());
    }
    let mut db = Database::connect(options(url, pool, SqliteSynchronous::Normal)).await?;
    crate::queries::count_statements(&mut db);
    Ok(db)
}

fn options(url: &str, pool: PoolLimits, synchronous: SqliteSynchronous) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool.max_connections)
        .acquire_timeout(pool.acquire_timeout)
        .sqlx_logging(false)
        // A SQLite connection cannot die idle in the pool, so testing it as it comes out is only
        // one more round trip to its worker thread on every statement (sqlx pings it anyway as it
        // goes back). A PostgreSQL connection can (a restarted server, a killed backend): it is
        // still tested, so that a dead one is replaced rather than failing a request.
        .test_before_acquire(!url.starts_with("sqlite:"))
        // WAL lets readers proceed during a write; the busy timeout makes concurrent writers queue
        // instead of failing with "database is locked", which one-time tokens rely on.
        .map_sqlx_sqlite_opts(move |o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    options
}

/// Whether a database error says the database could not be reached or used *now* — no connection
/// came free in time, the connection was lost or its backend terminated, the server is shutting
/// down or full, SQLite stayed locked past its busy timeout — as opposed to a fault in what was
/// asked of it. The first kind is the client's to retry (503 `database_unavailable`); the second
/// is a bug (500).
pub fn unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed) => {
            true
        }
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => match runtime {
            RuntimeErr::SqlxError(sqlx) => sqlx_unavailable(sqlx),
            _ => false,
        },
        _ => false,
    }
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::Io(_)
        | Error::Tls(_)
        | Error::BeginFailed => true,
        Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
                // SQLite's primary codes 5 and 6 (busy and locked, past the busy timeout),
                // extended codes included.
                code.parse::<u32>().is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
            } else {
                // PostgreSQL's SQLSTATE classes 08 (connection exception) and 57P (operator
                // intervention: `pg_terminate_backend`, shutdown, not accepting connections yet),
                // and 53300 (too many connections).
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }
        }
        _ => false,
    }
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
    use std::sync::Arc;

    use sea_orm::sqlx;

    use super::*;

    #[test]
    fn unavailable_is_what_a_retry_can_fix() {
        let sqlx_err = |e: sqlx::Error| RuntimeErr::SqlxError(Arc::new(e));
        let cases = [
            (DbErr::ConnectionAcquire(ConnAcquireErr::Timeout), true),
            (DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed), true),
            (DbErr::Conn(sqlx_err(sqlx::Error::PoolTimedOut)), true),
            (DbErr::Exec(sqlx_err(sqlx::Error::PoolClosed)), true),
            (
                DbErr::Query(sqlx_err(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))),
                true,
            ),
            (DbErr::Query(sqlx_err(sqlx::Error::RowNotFound)), false),
            (DbErr::Exec(sqlx_err(sqlx::Error::Protocol("unexpected message".into()))), false),
            (DbErr::Custom("disk full".into()), false),
            (DbErr::RecordNotFound("user".into()), false),
        ];
        for (err, expected) in cases {
            assert_eq!(unavailable(&err), expected, "{err:?}");
        }
    }

    #[tokio::test]
    async fn sqlite_locked_past_its_busy_timeout_is_unavailable_and_a_bad_statement_is_not() {
        use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("locked.db").display());
        let holder = Database::connect(&url).await.unwrap();
        holder.execute_unprepared("CREATE TABLE t (x INTEGER)").await.unwrap();
        let writing = holder.begin().await.unwrap();
        writing.execute_unprepared("INSERT INTO t VALUES (1)").await.unwrap();
        let mut options = ConnectOptions::new(&url);
        options.map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::from_millis(50)));
        let other = Database::connect(options).await.unwrap();
        let locked = other.execute_unprepared("INSERT INTO t VALUES (2)").await.unwrap_err();
        assert!(unavailable(&locked), "{locked:?}");
        let bad = other.execute_unprepared("INSERT INTO missing VALUES (1)").await.unwrap_err();
        assert!(!unavailable(&bad), "{bad:?}");
        writing.rollback().await.unwrap();
    }

    /// The one integer `sql` answers on `db`.
    async fn integer(db: &DatabaseConnection, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait as _;
        let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql);
        let row = db.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get_by_index(0).unwrap()
    }

    const ONE_PENDING: &str = "INSERT INTO login_throttle (key, attempts, pending, window_started_at) \
                               VALUES ('k', 0, 1, 0)";

    #[tokio::test]
    async fn only_the_fail_safe_handle_on_an_sqlite_file_skips_the_flush() {
        use sea_orm::ConnectionTrait as _;
        let limits = PoolLimits { max_connections: 2, acquire_timeout: Duration::from_secs(5) };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("two.db").display());
        let durable = connect_and_migrate(&url, limits).await.unwrap();
        let fail_safe = connect_fail_safe(&url, limits, &durable).await.unwrap();
        // SQLite's codes: 1 is NORMAL, 2 is FULL.
        assert_eq!(integer(&durable, "PRAGMA synchronous").await, 2);
        assert_eq!(integer(&fail_safe, "PRAGMA synchronous").await, 1);
        // One database behind both: what one commits, the other reads.
        fail_safe.execute_unprepared(ONE_PENDING).await.unwrap();
        let pending = "SELECT pending FROM login_throttle WHERE key = 'k'";
        assert_eq!(integer(&durable, pending).await, 1);

        // In memory there is nothing to flush, and a second pool would be a second database.
        let memory = connect_and_migrate("sqlite::memory:", limits).await.unwrap();
        let same = connect_fail_safe("sqlite::memory:", limits, &memory).await.unwrap();
        same.execute_unprepared(ONE_PENDING).await.unwrap();
        assert_eq!(integer(&memory, "SELECT COUNT(*) FROM login_throttle").await, 1);
    }

    /// Every use of the fail-safe handle, as `file: function`. Losing a write made through it must
    /// fail safe (ADR 33): a new use is argued there, then listed here. An ending (logout,
    /// revocation, a spent one-time token, a rotated refresh token) never is.
    const FAIL_SAFE_WRITERS: [&str; 5] = [
        "auth/password.rs: reserve_all",
        "auth/password.rs: reserve_all_at_once",
        "auth/password.rs: settle",
        "auth/password.rs: still_current_fail_safe",
        "sessions/mod.rs: create",
    ];

    #[test]
    fn the_fail_safe_handle_writes_only_what_adr_0033_lists() {
        fn visit(dir: &std::path::Path, root: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, root, found);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).unwrap();
                let file = path.strip_prefix(root).unwrap().display().to_string();
                let mut function = String::from("(no function)");
                for line in source.lines() {
                    if let Some((_, rest)) = line.split_once("fn ") {
                        let name: String =
                            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if !name.is_empty() {
                            function = name;
                        }
                    }
                    if line.contains(".db_fail_safe") && !line.trim_start().starts_with("//") {
                        found.push(format!("{file}: {function}"));
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        visit(&root, &root, &mut found);
        // This file's own test module names the handle in a string, not as a use.
        found.retain(|use_site| !use_site.starts_with("db.rs"));
        found.sort();
        found.dedup();
        assert_eq!(found, FAIL_SAFE_WRITERS, "see ADR 33 before writing through `db_fail_safe`");
    }

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
