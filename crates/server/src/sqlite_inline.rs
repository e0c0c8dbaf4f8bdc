//! The statements on a request's path, on SQLite, without leaving the request's thread: the
//! reads that stand alone (the session store's one read of every session-authenticated request, a
//! login's look at its throttle buckets and its user) and a login's fail-safe writes (ADR 33: its
//! throttle reservation and settlement, its session's creation, `still_current`'s no-op update).
//!
//! sqlx runs each SQLite connection on a thread of its own: a statement is a message to that
//! thread and an answer back, and the pool pings the connection again as it is returned — three
//! thread wake-ups and six context switches around a statement that itself takes a few
//! microseconds. Measured on one core, those hand-offs were most of the CPU a `GET
//! /api/session/me` cost, and most of what a login costs beside its hash (`just loadtest`). So on
//! SQLite these statements run here, through rusqlite on the same libsqlite3 as sqlx, inline in
//! the request's task.
//!
//! Why this is safe to do inline and correct across connections:
//! - the database is in WAL mode, so a reader never waits for a writer and sees every
//!   transaction committed before its statement began — a logout committed through sqlx is seen
//!   by the next read here;
//! - a read that cannot proceed at once (`SQLITE_BUSY`, e.g. while the WAL is being recovered)
//!   gives up at once and the caller falls back to sqlx, so an executor thread is never held;
//! - reads and writes take turns on the same connections: a connection that begins a transaction
//!   after another connection's commit drops every page it had cached, so a read on a connection
//!   of its own re-read each page after every write of a login (from the WAL or the file, a
//!   system call a page), where the connection that just wrote still holds them. In
//!   login storms on one core, a login's CPU on tokio's thread fell by 7 % (the median of six
//!   pairs, ADR 33);
//! - a write here is one statement in autocommit, committed `synchronous=NORMAL` like the
//!   fail-safe pool's (ADR 33): appended to the WAL, not flushed. It does not wait for the write
//!   lock: held elsewhere, the statement fails at once having changed nothing (SQLite rolls back
//!   a statement that fails), and the caller runs the same statement through the fail-safe pool,
//!   whose thread waits its turn off the executor. Nor does it checkpoint: its connections never
//!   checkpoint on commit (a checkpoint flushes). Every [`CHECKPOINT_EVERY`] inline commits the
//!   fail-safe pool checkpoints instead, and when that copied the whole WAL it also makes the
//!   write that starts the WAL over, since that write flushes the WAL's new header: so an inline
//!   write waits for the disk only if it comes between the two (see [`checkpoint`]);
//! - only statements that stand alone come here: a read that belongs to a transaction, and every
//!   write that is not fail-safe, stay on sea-orm.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};

/// Connections kept for reuse: one per executor thread is all that can be in use at once.
const KEEP: usize = 8;
/// Inline commits between two checkpoints asked of the fail-safe pool. A login commits four, of a
/// few pages each, so this keeps the WAL near SQLite's own threshold for checkpointing (1000
/// pages) when logins are all that write.
pub const CHECKPOINT_EVERY: u32 = 256;
/// Inline writes that fail for a reason other than a held lock, one after another, before the
/// inline path is tried only once every [`RETRY_EVERY`] writes: a fault of the file (permissions,
/// a full disk) would otherwise cost every login a connection opened, an error logged and the
/// pool's trip anyway.
const GIVE_UP_AFTER: u32 = 8;
const RETRY_EVERY: u32 = 1024;

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

/// What `write` returns through `writes`, counted as the request's statement; `None` when there
/// are no inline writes (not an SQLite file) or this one could not be done at once, and the caller
/// should run the same statement through the fail-safe pool instead. A statement that failed here
/// changed nothing, so running it again there never applies it twice.
pub fn try_inline_write<T>(
    writes: Option<&SqliteFailSafeWrites>,
    write: impl FnOnce(&SqliteFailSafeWrites) -> rusqlite::Result<T>,
) -> Option<T> {
    let writes = writes?;
    if !writes.worth_trying() {
        return None;
    }
    match write(writes) {
        Ok(value) => {
            crate::queries::count_one();
            writes.failing.store(0, Ordering::Relaxed);
            // Not awaited: the request does not wait for the disk.
            drop(writes.committed());
            Some(value)
        }
        Err(error) if busy(&error) => {
            tracing::debug!(%error, "the write lock is held elsewhere; writing through the pool");
            None
        }
        // The pool runs it again and reports what it finds, as it would have without this path.
        Err(error) => {
            let failing = writes.failing.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            if failing <= GIVE_UP_AFTER {
                tracing::warn!(%error, failing, "inline SQLite write failed; using the pool");
            }
            None
        }
    }
}

fn busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// A session row as the store needs it.
#[derive(Debug)]
pub struct SessionRow {
    pub data: String,
    pub expires_at: i64,
}

/// Reads on the connections of the fail-safe writes ([`SqliteReads::sharing`]).
#[derive(Debug)]
pub struct SqliteReads {
    connections: Arc<Connections>,
}

impl SqliteReads {
    /// Reads that take turns with `writes` on its connections (see the module comment: a
    /// connection keeps the pages cached that its own commits wrote, not another's).
    pub fn sharing(writes: &SqliteFailSafeWrites) -> Self {
        Self { connections: Arc::clone(&writes.connections) }
    }

    /// The row of the session whose id hashes to `id_hash`, if any.
    pub fn session(&self, id_hash: &str) -> rusqlite::Result<Option<SessionRow>> {
        let mut rows = self.rows(SELECT_SESSION, [id_hash], |row| {
            Ok(SessionRow { data: row.get(0)?, expires_at: row.get(1)? })
        })?;
        Ok(rows.pop())
    }

    /// Every row `sql` selects with `params`, each as `map` reads it. A statement that could
    /// write is refused (`InvalidQuery`) before it runs: the connections can write, and a write
    /// here would escape the fail-safe writes' rules (the checkpoint count, the give-up counter).
    pub fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.connections.rows(sql, params, map, Writing::Refused)
    }
}

/// Read-write connections to the server's SQLite file for the fail-safe writes (ADR 33) and the
/// reads that stand alone ([`SqliteReads`]), opened on demand and kept for reuse.
#[derive(Debug)]
pub struct SqliteFailSafeWrites {
    connections: Arc<Connections>,
    /// Where the checkpoints are asked for: the fail-safe pool, whose thread may wait for the disk.
    checkpoints: DatabaseConnection,
    commits: AtomicU32,
    /// Inline writes that failed one after another, a held lock aside.
    failing: AtomicU32,
    /// Writes sent to the pool without trying inline since the inline path was given up.
    passed_over: AtomicU32,
}

impl SqliteFailSafeWrites {
    /// `checkpoints`: the fail-safe pool on the same file, which runs the checkpoints.
    pub fn new(path: &Path, checkpoints: DatabaseConnection) -> Self {
        Self {
            connections: Arc::new(Connections::new(path)),
            checkpoints,
            commits: AtomicU32::new(0),
            failing: AtomicU32::new(0),
            passed_over: AtomicU32::new(0),
        }
    }

    /// False while the inline path is given up ([`GIVE_UP_AFTER`]), except once every
    /// [`RETRY_EVERY`] writes, so that it comes back when the fault is gone.
    fn worth_trying(&self) -> bool {
        if self.failing.load(Ordering::Relaxed) < GIVE_UP_AFTER {
            return true;
        }
        let passed_over = self.passed_over.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        passed_over.is_multiple_of(RETRY_EVERY)
    }

    /// Runs one statement in autocommit; the rows it changed.
    pub fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.connections.with(|connection| connection.prepare_cached(sql)?.execute(params))
    }

    /// Runs one statement in autocommit and returns what it returns (`RETURNING`), each row as
    /// `map` reads it. The rows are all read before the statement ends, so it commits here.
    pub fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        self.connections.rows(sql, params, map, Writing::Allowed)
    }

    /// Counts an inline commit, and every [`CHECKPOINT_EVERY`] of them has the fail-safe pool
    /// [`checkpoint`], off the executor: the checkpoint's task, if this commit started one.
    fn committed(&self) -> Option<tokio::task::JoinHandle<()>> {
        let count = self.commits.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if !count.is_multiple_of(CHECKPOINT_EVERY) {
            return None;
        }
        // Outside a runtime (no request to serve) the next commit on a pool checkpoints instead.
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let pool = self.checkpoints.clone();
        Some(runtime.spawn(async move {
            if let Err(error) = checkpoint(&pool).await {
                tracing::warn!(%error, "checkpointing the WAL after inline writes");
            }
        }))
    }
}

/// A passive checkpoint (it never blocks a reader or a writer), and straight after it, in the same
/// trip to the pool's thread, a write that changes nothing. After a checkpoint that copied the
/// whole WAL, the next write starts the WAL over and flushes its new header (even under
/// `synchronous=NORMAL`: a header written out of order could corrupt the database); that write is
/// this one, on the pool's thread, rather than a request's inline write, which could slip in
/// between only while the pool's thread runs from one statement to the next. `user_version` is set
/// to what it is: a write of one page that nothing reads. (After a checkpoint that could not copy
/// everything, it appends that page to the WAL, and the next checkpoint copies it.)
async fn checkpoint(pool: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let read = sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA user_version");
    let Some(version) = pool.query_one_raw(read).await? else { return Ok(()) };
    let version: i64 = version.try_get("", "user_version")?;
    pool.execute_unprepared(&format!(
        "PRAGMA wal_checkpoint(PASSIVE); PRAGMA user_version = {version};"
    ))
    .await?;
    Ok(())
}

fn open_for_fail_safe_writes(path: &Path) -> rusqlite::Result<Connection> {
    // Never creates the file: the server's pools made it and ran the migrations.
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The write lock is taken at once or not at all, and a read that would wait gives up too
    // (see the module comment).
    connection.busy_timeout(Duration::ZERO)?;
    // What sqlx sets on its connections, and the fail-safe pool's durability (ADR 33).
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    let _pages: i64 =
        connection.pragma_update_and_check(None, "wal_autocheckpoint", 0, |row| row.get(0))?;
    Ok(connection)
}

/// Whether a statement run through [`Connections::rows`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    Allowed,
    Refused,
}

/// The inline connections ([`open_for_fail_safe_writes`]), opened on demand and kept for reuse.
#[derive(Debug)]
struct Connections {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Connections {
    fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), idle: Mutex::new(Vec::new()) }
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let connection = match self.take() {
            Some(connection) => connection,
            None => open_for_fail_safe_writes(&self.path)?,
        };
        let result = work(&connection);
        // A connection whose statement failed is dropped rather than reused: it may be the file
        // that is the problem, and the next statement opens a fresh one. Not when it only found
        // the database locked: that is no fault of the connection.
        if result.as_ref().map_or_else(busy, |_| true) {
            self.give_back(connection);
        }
        result
    }

    /// Every row `sql` returns with `params`, each as `map` reads it, run to the end. With
    /// [`Writing::Refused`], a statement that could write fails (`InvalidQuery`) before it runs.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        writing: Writing,
    ) -> rusqlite::Result<Vec<T>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            if writing == Writing::Refused && !statement.readonly() {
                return Err(rusqlite::Error::InvalidQuery);
            }
            statement.query_map(params, map)?.collect()
        })
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

    /// A connection of its own, as another request's or the pool's would be.
    fn other_connection(path: &Path) -> Connection {
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    }

    /// Inline reads and writes whose checkpoints go to a pool on another database: no connection
    /// to `path` is open until a statement needs one.
    async fn reads_on(path: &Path) -> (SqliteFailSafeWrites, SqliteReads) {
        let checkpoints = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let writes = SqliteFailSafeWrites::new(path, checkpoints);
        let reads = SqliteReads::sharing(&writes);
        (writes, reads)
    }

    #[tokio::test]
    async fn finds_a_row_and_reports_a_missing_one() {
        let (_dir, path) = database_with_one_session();
        let (_writes, reads) = reads_on(&path).await;
        let row = reads.session("known").unwrap().unwrap();
        assert_eq!((row.data.as_str(), row.expires_at), ("{\"a\":1}", 42));
        assert!(reads.session("unknown").unwrap().is_none());
    }

    #[tokio::test]
    async fn sees_a_delete_committed_by_another_connection() {
        let (_dir, path) = database_with_one_session();
        let (_writes, reads) = reads_on(&path).await;
        assert!(reads.session("known").unwrap().is_some());
        // The reused, idle shared connection must not serve an old snapshot after a logout.
        Connection::open(&path).unwrap().execute("DELETE FROM sessions", []).unwrap();
        assert!(reads.session("known").unwrap().is_none());
    }

    #[tokio::test]
    async fn numbered_placeholders_bind_in_order_as_sqlx_binds_them() {
        // The login's throttle read is one SQL text for sqlx and for this module.
        let (_dir, path) = database_with_one_session();
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO sessions VALUES ('other', '{}', 7)", [])
            .unwrap();
        let (_writes, reads) = reads_on(&path).await;
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

    #[tokio::test]
    async fn a_locked_database_is_an_error_at_once_not_a_wait() {
        let (_dir, path) = database_with_one_session();
        let (writes, reads) = reads_on(&path).await;
        let locker = Connection::open(&path).unwrap();
        // An exclusive lock in WAL mode shuts readers out too (as a rollback-journal recovery
        // would): the read must give up, leaving the caller to take the pool's path.
        locker.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;").unwrap();
        locker.execute("UPDATE sessions SET expires_at = 43", []).unwrap();
        locker.execute_batch("COMMIT;").unwrap();
        let error = reads.session("known").unwrap_err();
        assert_eq!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy), "{error}");
        // At once: the shared connections wait for no lock (rusqlite's own default is 5 s).
        drop(locker);
        assert_eq!(pragma(&writes, "busy_timeout"), 0);
    }

    #[tokio::test]
    async fn a_read_that_could_write_is_refused_before_it_runs() {
        let (_dir, path) = database_with_one_session();
        let (_writes, reads) = reads_on(&path).await;
        let delete = "DELETE FROM sessions RETURNING id_hash";
        let error = reads.rows(delete, [], |row| row.get::<_, String>(0)).unwrap_err();
        assert!(matches!(error, rusqlite::Error::InvalidQuery), "{error}");
        assert_eq!(expiry_of_known(&path), 42);
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_not_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let (writes, reads) = reads_on(&path).await;
        assert!(reads.session("known").is_err());
        assert!(writes.execute("DELETE FROM sessions", []).is_err());
        assert!(!path.exists(), "the connections must never create the file");
    }

    #[tokio::test]
    async fn a_read_takes_the_connection_the_last_write_left() {
        let (_dir, path) = database_with_one_session();
        let (writes, reads) = reads_on(&path).await;
        // Two connections idle already: the read must take the one the write gave back last.
        for _ in 0..2 {
            writes.connections.give_back(open_for_fail_safe_writes(&path).unwrap());
        }
        let update = "UPDATE sessions SET expires_at = 45 WHERE id_hash = ?1";
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(update, ["known"])), Some(1));
        // `total_changes()` counts the rows this connection changed since it was opened: the read
        // ran where the write did, and finds the pages that write left in the connection's cache.
        let changed_here = reads.rows("SELECT total_changes()", [], |row| row.get::<_, i64>(0));
        assert_eq!(changed_here.unwrap(), [1], "the read took another connection");
        assert_eq!(reads.session("known").unwrap().map(|row| row.expires_at), Some(45));
    }

    async fn fail_safe_writes_on(path: &Path) -> SqliteFailSafeWrites {
        let pool =
            sea_orm::Database::connect(format!("sqlite://{}", path.display())).await.unwrap();
        SqliteFailSafeWrites::new(path, pool)
    }

    fn pragma(writes: &SqliteFailSafeWrites, name: &str) -> i64 {
        writes
            .connections
            .with(|connection| connection.pragma_query_value(None, name, |row| row.get(0)))
            .unwrap()
    }

    fn expiry_of_known(path: &Path) -> i64 {
        let sql = "SELECT expires_at FROM sessions WHERE id_hash = 'known'";
        other_connection(path).query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[tokio::test]
    async fn a_write_commits_at_once_unflushed_and_is_seen_by_other_connections() {
        let (_dir, path) = database_with_one_session();
        let writes = fail_safe_writes_on(&path).await;
        let update = "UPDATE sessions SET expires_at = 43 WHERE id_hash = ?1";
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(update, ["known"])), Some(1));
        assert_eq!(expiry_of_known(&path), 43);
        // ADR 33's durability, sqlx's foreign keys, and neither a wait for the lock nor a
        // checkpoint (a flush) on the request's thread.
        assert_eq!(pragma(&writes, "synchronous"), 1, "NORMAL");
        assert_eq!(pragma(&writes, "foreign_keys"), 1);
        assert_eq!(pragma(&writes, "busy_timeout"), 0);
        assert_eq!(pragma(&writes, "wal_autocheckpoint"), 0);
    }

    #[tokio::test]
    async fn a_write_lock_held_elsewhere_sends_the_write_to_the_pool_having_changed_nothing() {
        let (_dir, path) = database_with_one_session();
        let writes = fail_safe_writes_on(&path).await;
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let update = "UPDATE sessions SET expires_at = 44 WHERE id_hash = ?1";
        let error = writes.execute(update, ["known"]).unwrap_err();
        assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy), "{error}");
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(update, ["known"])), None);
        holder.execute_batch("COMMIT").unwrap();
        assert_eq!(expiry_of_known(&path), 42);
        // The connection that found the lock taken is kept, and no worse for it.
        assert_eq!(writes.connections.take().map(|c| writes.connections.give_back(c)), Some(()));
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(update, ["known"])), Some(1));
        assert_eq!(expiry_of_known(&path), 44);
        assert_eq!(writes.failing.load(Ordering::Relaxed), 0, "a held lock is not a fault");
    }

    #[tokio::test]
    async fn a_statement_that_fails_part_way_changes_nothing() {
        // What makes running a failed inline write again through the pool safe.
        let (_dir, path) = database_with_one_session();
        let writes = fail_safe_writes_on(&path).await;
        let insert = "INSERT INTO sessions VALUES ('new', '{}', 1), ('known', '{}', 2)";
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(insert, [])), None);
        let sql = "SELECT COUNT(*) FROM sessions WHERE id_hash = 'new'";
        let new: i64 = other_connection(&path).query_row(sql, [], |row| row.get(0)).unwrap();
        assert_eq!(new, 0);
        assert_eq!(expiry_of_known(&path), 42);
    }

    #[tokio::test]
    async fn every_so_many_inline_commits_the_pool_checkpoints_the_wal() {
        let (_dir, path) = database_with_one_session();
        let writes = fail_safe_writes_on(&path).await;
        // `immutable` ignores the WAL: what this sees is what a checkpoint has copied to the file.
        let in_the_file = |id: &str| -> bool {
            let uri = format!("file:{}?immutable=1", path.display());
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
            let file = Connection::open_with_flags(uri, flags).unwrap();
            file.query_row("SELECT count(*) FROM sessions WHERE id_hash = ?1", [id], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
                == 1
        };
        // Five pages a row: past SQLite's own threshold for checkpointing on commit (1000).
        let insert = "INSERT INTO sessions VALUES (?1, zeroblob(20000), 0)";
        for i in 1..CHECKPOINT_EVERY {
            let id = format!("s{i}");
            assert_eq!(try_inline_write(Some(&writes), |w| w.execute(insert, [&id])), Some(1));
        }
        assert!(!in_the_file("s1"), "inline commits never checkpoint themselves");
        writes.execute(insert, ["last"]).unwrap();
        let checkpoint = writes.committed().expect("this commit asks the pool for a checkpoint");
        checkpoint.await.unwrap();
        assert!(in_the_file("s1") && in_the_file("last"));
        // And the pool started the WAL over itself, with a write of one page: the next inline
        // write appends to it instead of flushing a new header.
        let (log, copied): (i64, i64) = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?)))
            .unwrap();
        assert_eq!((log, copied), (1, 1));
    }

    #[tokio::test]
    async fn a_fault_that_lasts_sends_writes_to_the_pool_without_trying_each_inline() {
        let (_dir, path) = database_with_one_session();
        let writes = fail_safe_writes_on(&path).await;
        let broken = "UPDATE no_such_table SET x = 1";
        for _ in 0..GIVE_UP_AFTER {
            assert_eq!(try_inline_write(Some(&writes), |w| w.execute(broken, [])), None);
        }
        let update = "UPDATE sessions SET expires_at = expires_at + 1 WHERE id_hash = ?1";
        let (mut writes_sent, mut tried) = (0, 0);
        for _ in 0..RETRY_EVERY {
            writes_sent += 1;
            let inline = try_inline_write(Some(&writes), |w| {
                tried += 1;
                w.execute(update, ["known"])
            });
            if inline.is_some() {
                break;
            }
        }
        // Given up for RETRY_EVERY - 1 writes, then tried again and found working.
        assert_eq!((writes_sent, tried), (RETRY_EVERY, 1));
        assert_eq!(expiry_of_known(&path), 43);
        assert_eq!(writes.failing.load(Ordering::Relaxed), 0);
        assert_eq!(try_inline_write(Some(&writes), |w| w.execute(update, ["known"])), Some(1));
    }
}
