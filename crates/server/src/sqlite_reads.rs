//! The reads on a request's path, on SQLite, without leaving the request's thread: the session
//! store's one read of every session-authenticated request, and a login's look at its throttle
//! buckets and its user.
//!
//! sqlx runs each SQLite connection on a thread of its own: a statement is a message to that
//! thread and an answer back, and the pool pings the connection again as it is returned — three
//! thread wake-ups and six context switches around a primary-key lookup that itself takes a few
//! microseconds. Measured on one core, those hand-offs were most of the CPU a `GET
//! /api/session/me` cost, and a good part of what a login costs beside its hash (`just
//! loadtest`). So on SQLite these reads run here, through rusqlite on the same libsqlite3 as sqlx,
//! inline in the request's task.
//!
//! Why this is safe to do inline and correct across connections:
//! - the connections are read-only and the database is in WAL mode, so a reader never waits for a
//!   writer and sees every transaction committed before its statement began — a logout committed
//!   through sqlx is seen by the next read here;
//! - a read that cannot proceed at once (`SQLITE_BUSY`, e.g. while the WAL is being recovered)
//!   gives up after [`BUSY_WAIT`] and the caller falls back to sqlx, so an executor thread is never
//!   held for long;
//! - only reads that stand alone come here: a read that belongs to a transaction, and every write,
//!   stay on sea-orm.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a read waits for a lock before the caller takes the sqlx path instead.
const BUSY_WAIT: Duration = Duration::from_millis(20);
/// Connections kept for reuse: one per executor thread is all that can be in use at once.
const KEEP: usize = 8;

const SELECT_SESSION: &str = "SELECT data, expires_at FROM sessions WHERE id_hash = ?1";

/// What `read` returns through `reads`, counted as the request's statement; `None` when there are
/// no inline reads (not an SQLite file) or this one could not be done at once, and the caller
/// should ask sea-orm instead.
pub fn try_inline<T>(
    reads: Option<&SqliteReads>,
    read: impl FnOnce(&SqliteReads) -> rusqlite::Result<T>,
) -> Option<T> {
    match read(reads?) {
        Ok(value) => {
            crate::queries::count_one();
            Some(value)
        }
        // Busy or otherwise unable: the pool's connections wait their turn instead.
        Err(error) => {
            tracing::debug!(%error, "inline SQLite read failed; using the pool");
            None
        }
    }
}

/// A session row as the store needs it.
#[derive(Debug)]
pub struct SessionRow {
    pub data: String,
    pub expires_at: i64,
}

/// Read-only connections to the server's SQLite file, opened on demand and kept for reuse.
#[derive(Debug)]
pub struct SqliteReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReads {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), idle: Mutex::new(Vec::new()) }
    }

    /// The row of the session whose id hashes to `id_hash`, if any.
    pub fn session(&self, id_hash: &str) -> rusqlite::Result<Option<SessionRow>> {
        let mut rows = self.rows(SELECT_SESSION, [id_hash], |row| {
            Ok(SessionRow { data: row.get(0)?, expires_at: row.get(1)? })
        })?;
        Ok(rows.pop())
    }

    /// Every row `sql` selects with `params`, each as `map` reads it.
    pub fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let connection = match self.take() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let rows = connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_map(params, map)?.collect());
        // A connection whose statement failed is dropped rather than reused: it may be the file
        // that is the problem, and the next read opens a fresh one.
        if rows.is_ok() {
            self.give_back(connection);
        }
        rows
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_WAIT)?;
        Ok(connection)
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEEP {
            idle.push(connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_with_one_session() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, data TEXT NOT NULL,
                                        expires_at INTEGER NOT NULL);
                 INSERT INTO sessions VALUES ('known', '{\"a\":1}', 42);",
            )
            .unwrap();
        (dir, path)
    }

    #[test]
    fn finds_a_row_and_reports_a_missing_one() {
        let (_dir, path) = database_with_one_session();
        let reads = SqliteReads::new(&path);
        let row = reads.session("known").unwrap().unwrap();
        assert_eq!((row.data.as_str(), row.expires_at), ("{\"a\":1}", 42));
        assert!(reads.session("unknown").unwrap().is_none());
    }

    #[test]
    fn sees_a_delete_committed_by_another_connection() {
        let (_dir, path) = database_with_one_session();
        let reads = SqliteReads::new(&path);
        assert!(reads.session("known").unwrap().is_some());
        // The reused, idle read connection must not serve an old snapshot after a logout.
        Connection::open(&path).unwrap().execute("DELETE FROM sessions", []).unwrap();
        assert!(reads.session("known").unwrap().is_none());
    }

    #[test]
    fn numbered_placeholders_bind_in_order_as_sqlx_binds_them() {
        // The login's throttle read is one SQL text for sqlx and for this module.
        let (_dir, path) = database_with_one_session();
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO sessions VALUES ('other', '{}', 7)", [])
            .unwrap();
        let reads = SqliteReads::new(&path);
        let sql = "SELECT id_hash, expires_at FROM sessions WHERE id_hash IN ($1, $2, $3) \
                   ORDER BY expires_at";
        let keys = ["missing", "known", "other"];
        let rows = reads
            .rows(sql, rusqlite::params_from_iter(keys), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .unwrap();
        assert_eq!(rows, [("other".to_owned(), 7), ("known".to_owned(), 42)]);
    }

    #[test]
    fn a_locked_database_is_an_error_soon_not_a_wait() {
        let (_dir, path) = database_with_one_session();
        let locker = Connection::open(&path).unwrap();
        // An exclusive lock in WAL mode shuts readers out too (as a rollback-journal recovery
        // would): the read must give up, leaving the caller to take the pool's path.
        locker.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;").unwrap();
        locker.execute("UPDATE sessions SET expires_at = 43", []).unwrap();
        locker.execute_batch("COMMIT;").unwrap();
        let reads = SqliteReads::new(&path);
        let error = reads.session("known").unwrap_err();
        assert_eq!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy), "{error}");
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        assert!(SqliteReads::new(&path).session("known").is_err());
        assert!(!path.exists(), "a read-only open must never create the file");
    }
}
