//! Checking a username and password: shared by every scheme that logs in with them.
//!
//! Order matters:
//! 1. a cheap look at the throttle buckets (`core::throttle`: per client, per account and client,
//!    per account) refuses a client that is already over a limit before it takes anything else;
//! 2. a slot on the hashing pool (503 `server_busy` if none comes free in time);
//! 3. a reservation in every bucket or in none, atomically (on SQLite one statement, on PostgreSQL
//!    one transaction of a statement per bucket), so concurrent guesses on any number of instances
//!    cannot all pass a limit — checks in progress count against it;
//! 4. the password, checked the same way whether or not the user exists;
//! 5. the outcome settles the reservations in one transaction: a failure is counted in every
//!    bucket, a success in none (and clears the account-and-client bucket), so a correct password
//!    is never refused because of other correct logins, and a client's failures never lock out
//!    another client until the account-wide ceiling is reached.

use std::net::IpAddr;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbBackend, DbErr, EntityTrait as _, QueryFilter as _,
    Statement, TransactionTrait as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokenlab_core::account::PASSWORD_MAX_CHARS;
use tokenlab_core::request::throttle_client;
use tokenlab_core::throttle::{FailureLimit, admit_check, retry_after_seconds};
use tokenlab_core::{Reason, Timestamp};
use tracing::Instrument as _;

use crate::clock::from_unix_seconds;
use crate::entities::users;
use crate::error::{ApiError, Context as _};
use crate::hasher::Verification;
use crate::sqlite_inline::{SqliteReads, try_inline, try_inline_write};
use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures from one client address, whatever the account.
    pub per_client: FailureLimit,
    /// Failures for one account from one client address.
    pub per_account_and_client: FailureLimit,
    /// Failures for one account from all clients together: the ceiling for a distributed guesser.
    pub per_account: FailureLimit,
    /// Registrations from one client address (every attempt counts).
    pub registrations_per_client: FailureLimit,
}

/// One throttle bucket a login is counted in.
struct Bucket {
    key: String,
    limit: FailureLimit,
    /// What the refusal says.
    refusal: &'static str,
    /// What a refusal for checks in progress says.
    in_progress: &'static str,
}

fn buckets(limits: &LoginLimits, username: &str, client: IpAddr) -> [Bucket; 3] {
    // Usernames are at most 32 characters; anything longer cannot exist, but is still counted
    // under a bounded key so that the table cannot be flooded with huge keys.
    let account: String = username.chars().take(64).collect();
    let client = throttle_client(client);
    [
        Bucket {
            key: format!("client:{client}"),
            limit: limits.per_client,
            refusal: "too many failed logins from this address",
            in_progress: "other logins from this address",
        },
        Bucket {
            key: format!("pair:{client}|{account}"),
            limit: limits.per_account_and_client,
            refusal: "too many failed logins for this account from this address",
            in_progress: "other logins for this account from this address",
        },
        Bucket {
            key: format!("account:{account}"),
            limit: limits.per_account,
            refusal: "too many failed logins for this account",
            in_progress: "other logins for this account",
        },
    ]
}

/// Returns the user whose password this is, or refuses with `invalid_credentials`,
/// `rate_limited` or `server_busy`.
#[tracing::instrument(name = "password.authenticate", skip_all)]
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
    client: IpAddr,
) -> Result<users::Model, ApiError> {
    // On a task of its own: a client that hangs up must not leave its reservations behind (they
    // would count like failures until the window ends), so the check runs to its settlement.
    let (state, username) = (state.clone(), username.to_owned());
    let checking = async move { check_and_settle(&state, &username, password, client).await };
    tokio::spawn(crate::queries::counted(checking.in_current_span()))
        .await
        .map_err(ApiError::internal)?
}

async fn check_and_settle(
    state: &AppState,
    username: &str,
    password: SecretString,
    client: IpAddr,
) -> Result<users::Model, ApiError> {
    // No account can have a longer password (registration refuses one), so it is refused before
    // any hashing: a megabyte of "password" must not cost a megabyte of argon2 input.
    if password.expose_secret().chars().count() > PASSWORD_MAX_CHARS {
        return Err(ApiError::refused(Reason::InvalidCredentials, "wrong username or password"));
    }
    let now = state.clock.now();
    let buckets = buckets(&state.login_limits, username, client);
    already_full(state, &buckets, now).await.context("looking at the login throttle")?;
    let slot = state.hasher.slot().await?;
    reserve_all(state, &buckets, now).await?;

    let checked = check(state, slot, username, password.clone()).await;
    let outcome = match &checked {
        Ok(Some(_)) => Settle::Success,
        Ok(None) => Settle::Failure,
        Err(_) => Settle::Release,
    };
    settle(state, &buckets, outcome).await.context("settling the login throttle")?;
    match checked? {
        Some((user, needs_rehash)) if needs_rehash => rehash(state, user, password).await,
        Some((user, _)) => Ok(user),
        None => Err(ApiError::refused(Reason::InvalidCredentials, "wrong username or password")),
    }
}

/// The user and whether their hash needs rehashing, if the password is theirs.
async fn check(
    state: &AppState,
    slot: crate::hasher::HashSlot,
    username: &str,
    password: SecretString,
) -> Result<Option<(users::Model, bool)>, ApiError> {
    let user = match try_inline(state.sqlite_reads.as_deref(), |reads| user_named(reads, username))
    {
        Some(user) => user,
        None => users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(&state.db)
            .await
            .context("loading the user")?,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verification =
        state.hasher.verify_in(slot, password, stored).await.map_err(|err| match err {
            // Which row: a stored hash the workers cannot check (`hasher::matches`) is for an
            // operator to find.
            ApiError::Internal(cause) => ApiError::Internal(match &user {
                Some(user) => cause.context(format!("verifying the password of user {}", user.id)),
                None => cause.context("verifying a password against the dummy hash"),
            }),
            refused => refused,
        })?;
    Ok(match (user, verification) {
        (Some(user), Verification::Match { needs_rehash }) => Some((user, needs_rehash)),
        _ => None,
    })
}

/// The user called `username`, read inline (`sqlite_inline`).
fn user_named(reads: &SqliteReads, username: &str) -> rusqlite::Result<Option<users::Model>> {
    let sql = "SELECT id, username, password_hash, created_at FROM users WHERE username = ?1";
    let mut users = reads.rows(sql, [username], |row| {
        Ok(users::Model {
            id: row.get(0)?,
            username: row.get(1)?,
            password_hash: row.get(2)?,
            created_at: row.get(3)?,
        })
    })?;
    Ok(users.pop())
}

fn rate_limited(message: &str, wait: time::Duration) -> ApiError {
    let seconds = retry_after_seconds(wait);
    ApiError::refused(Reason::RateLimited, format!("{message}; try again in {seconds} s"))
        .with_retry_after(seconds)
}

/// Refuses at once when a bucket is already full of failures: such a request never waits for a
/// hashing slot, so a throttled guesser cannot crowd out anyone's login. One read for all buckets.
async fn already_full(
    state: &AppState,
    buckets: &[Bucket],
    now: Timestamp,
) -> Result<(), ApiError> {
    for (bucket, held) in buckets.iter().zip(held(state, buckets).await?) {
        let Some(held) = held else { continue };
        admit_check(&bucket.limit, held.failures, 0, held.started, now)
            .map_err(|wait| rate_limited(bucket.refusal, wait))?;
    }
    Ok(())
}

/// A bucket's row: the failures counted in its window, the checks in progress, the window's start.
struct Held {
    failures: u32,
    pending: u32,
    started: Timestamp,
}

/// Each bucket's row, in the buckets' order (`None`: none yet). One read, inline when it can be.
async fn held(state: &AppState, buckets: &[Bucket]) -> Result<Vec<Option<Held>>, ApiError> {
    let keys: Vec<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
    let sql = format!(
        "SELECT key, attempts, pending, window_started_at FROM login_throttle WHERE key IN ({})",
        placeholders(keys.len())
    );
    let inline = try_inline(state.sqlite_reads.as_deref(), |reads| {
        reads.rows(&sql, rusqlite::params_from_iter(&keys), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get(3)?,
            ))
        })
    });
    let rows = match inline {
        Some(rows) => rows,
        None => {
            let rows = state
                .db
                .query_all_raw(Statement::from_sql_and_values(
                    state.db.get_database_backend(),
                    sql,
                    keys.iter().map(|&k| k.into()),
                ))
                .await?;
            let columns = |row: sea_orm::QueryResult| -> Result<(String, i64, i64, i64), DbErr> {
                Ok((
                    row.try_get("", "key")?,
                    row.try_get("", "attempts")?,
                    row.try_get("", "pending")?,
                    row.try_get("", "window_started_at")?,
                ))
            };
            rows.into_iter().map(columns).collect::<Result<Vec<_>, _>>()?
        }
    };
    let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    buckets
        .iter()
        .map(|bucket| {
            let Some((_, attempts, pending, started)) = rows.iter().find(|r| r.0 == bucket.key)
            else {
                return Ok(None);
            };
            Ok(Some(Held {
                failures: count(*attempts),
                pending: count(*pending),
                started: from_unix_seconds(*started)?,
            }))
        })
        .collect()
}

/// `$1, $2, …, $n`: the placeholders of an `IN` list (both backends number them this way).
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Reserves a place for one check in every bucket, or in none. On the fail-safe handle
/// (`db::connect_fail_safe`): a reservation lost in a power cut only frees a place.
///
/// On SQLite, one statement for all buckets ([`reserve_all_at_once`]). On PostgreSQL, one
/// transaction with a statement per bucket, so a login's reservations cost one commit rather than
/// one per bucket; the buckets are always taken in the same order, here and in `settle`, so two
/// logins wait for each other's rows rather than deadlock.
async fn reserve_all(state: &AppState, buckets: &[Bucket], now: Timestamp) -> Result<(), ApiError> {
    if state.db_fail_safe.get_database_backend() == DbBackend::Sqlite {
        return reserve_all_at_once(state, buckets, now).await;
    }
    let txn = state.db_fail_safe.begin().await.context("reserving a login check")?;
    for bucket in buckets {
        if let Err(refused) = reserve(&txn, bucket, now).await {
            txn.rollback().await.context("giving back a refused login's reservations")?;
            return Err(refused);
        }
    }
    txn.commit().await.context("committing a login check's reservations")?;
    Ok(())
}

/// [`reserve_all_at_once`]'s statement and its parameters (as rusqlite binds them; [`for_sqlx`]
/// when it runs through the pool).
fn reserve_all_statement(
    buckets: &[Bucket],
    now: Timestamp,
) -> (String, Vec<rusqlite::types::Value>) {
    // `?N`, not `$N`: SQLite numbers a `$N` by the order it first appears in (here `$2` before
    // `$1`), which rusqlite binds by; `?N` is parameter N for rusqlite and sqlx alike.
    let rows = (0..buckets.len())
        .map(|i| format!("(?{}, ?{}, ?{})", 3 * i + 2, 3 * i + 3, 3 * i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    // `WHERE NOT EXISTS` is also what SQLite needs to tell the upsert's `ON CONFLICT` from a
    // join's `ON`.
    let sql = format!(
        "WITH asked (key, window_s, max_checks) AS (VALUES {rows}) \
         INSERT INTO login_throttle (key, attempts, pending, window_started_at) \
         SELECT asked.key, \
           CASE WHEN held.key IS NULL OR held.window_started_at + asked.window_s <= ?1 \
                THEN 0 ELSE held.attempts END, \
           CASE WHEN held.key IS NULL OR held.window_started_at + asked.window_s <= ?1 \
                THEN 1 ELSE held.pending + 1 END, \
           CASE WHEN held.key IS NULL OR held.window_started_at + asked.window_s <= ?1 \
                THEN ?1 ELSE held.window_started_at END \
         FROM asked LEFT JOIN login_throttle AS held ON held.key = asked.key \
         WHERE NOT EXISTS ( \
           SELECT 1 FROM asked AS capped JOIN login_throttle AS t ON t.key = capped.key \
           WHERE t.window_started_at + capped.window_s > ?1 \
             AND t.attempts + t.pending >= capped.max_checks) \
         ON CONFLICT (key) DO UPDATE SET attempts = excluded.attempts, \
           pending = excluded.pending, window_started_at = excluded.window_started_at \
         RETURNING key"
    );
    let mut values = vec![rusqlite::types::Value::Integer(now.unix_timestamp())];
    for bucket in buckets {
        values.extend([
            rusqlite::types::Value::Text(bucket.key.clone()),
            rusqlite::types::Value::Integer(bucket.limit.window.whole_seconds()),
            rusqlite::types::Value::Integer(i64::from(bucket.limit.max_failures)),
        ]);
    }
    (sql, values)
}

/// Parameters built for rusqlite, as sea-orm binds them.
fn for_sqlx(values: Vec<rusqlite::types::Value>) -> Vec<sea_orm::Value> {
    use rusqlite::types::Value;
    let as_sqlx = |value| -> sea_orm::Value {
        match value {
            Value::Null => sea_orm::Value::BigInt(None),
            Value::Integer(integer) => integer.into(),
            Value::Real(real) => real.into(),
            Value::Text(text) => text.into(),
            Value::Blob(blob) => blob.into(),
        }
    };
    values.into_iter().map(as_sqlx).collect()
}

/// [`reserve_all`] on SQLite: one statement, which admits the login into every bucket only if none
/// of them is full (the condition of [`reserve`], the same as `core::throttle::admit_check`).
///
/// Why not the transaction PostgreSQL uses: every statement is a round trip to sqlx's connection
/// thread, and on one core each costs two context switches; the transaction's five made up a
/// quarter of a login's CPU outside its hash in a login storm (#14). One statement is enough for
/// atomicity here: SQLite takes its single write lock before the statement reads anything, so no
/// other login on any connection or instance can come between the check and the reservation.
async fn reserve_all_at_once(
    state: &AppState,
    buckets: &[Bucket],
    now: Timestamp,
) -> Result<(), ApiError> {
    let (sql, values) = reserve_all_statement(buckets, now);
    let inline = try_inline_write(state.db_fail_safe_inline.as_deref(), |writes| {
        writes.rows(&sql, rusqlite::params_from_iter(&values), |_| Ok(()))
    });
    let reserved = match inline {
        Some(reserved) => reserved.len(),
        None => state
            .db_fail_safe
            .query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, for_sqlx(values)))
            .await
            .context("reserving a login check")?
            .len(),
    };
    if reserved == buckets.len() {
        return Ok(());
    }
    if reserved != 0 {
        // The statement admits into all or none.
        return Err(ApiError::internal(format!(
            "a login check was reserved in {reserved} of {} throttle buckets",
            buckets.len()
        )));
    }
    // Refused: say why, by the first bucket (in the order they are taken) that is full now. Read
    // after the refusal, so a check that settled in between may have made room again.
    for (bucket, held) in buckets.iter().zip(held(state, buckets).await?) {
        let Some(held) = held else { continue };
        if let Err(wait) =
            admit_check(&bucket.limit, held.failures, held.pending, held.started, now)
        {
            if held.failures < bucket.limit.max_failures {
                return Err(in_progress(bucket.in_progress));
            }
            return Err(rate_limited(bucket.refusal, wait));
        }
    }
    // Room again already (a check settled in between): which bucket was full is no longer
    // known, and the client may retry at once.
    Err(in_progress("other logins"))
}

/// Full only because of checks still in progress: their outcome decides whether there is room,
/// in a moment. Still 429, but the wait is a second, not the rest of the window, and the message
/// does not claim failures that have not happened.
fn in_progress(what: &str) -> ApiError {
    ApiError::refused(Reason::RateLimited, format!("{what} are being checked; retry in a moment"))
        .with_retry_after(1)
}

/// The failures counted under `key` in its current window, and when that window began.
async fn counted(
    conn: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<(u32, Timestamp)>, ApiError> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT attempts, window_started_at FROM login_throttle WHERE key = $1",
            [key.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let failures = u32::try_from(row.try_get::<i64>("", "attempts")?).unwrap_or(u32::MAX);
    Ok(Some((failures, from_unix_seconds(row.try_get("", "window_started_at")?)?)))
}

/// Reserves a place for one check in `bucket`: one statement, so that of any number of concurrent
/// attempts on any number of instances only as many pass as the limit has room for. The condition
/// mirrors `core::throttle::admit_check`; a window that is over restarts.
async fn reserve(
    conn: &impl ConnectionTrait,
    bucket: &Bucket,
    now: Timestamp,
) -> Result<(), ApiError> {
    let now_s = now.unix_timestamp();
    let window_s = bucket.limit.window.whole_seconds();
    let sql = "INSERT INTO login_throttle (key, attempts, pending, window_started_at) \
               VALUES ($1, 0, 1, $2) \
               ON CONFLICT (key) DO UPDATE SET \
                 attempts = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN 0 ELSE login_throttle.attempts END, \
                 pending = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN 1 ELSE login_throttle.pending + 1 END, \
                 window_started_at = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN $2 ELSE login_throttle.window_started_at END \
               WHERE login_throttle.window_started_at + $3 <= $2 \
                  OR login_throttle.attempts + login_throttle.pending < $4 \
               RETURNING pending";
    let backend = conn.get_database_backend();
    let max = i64::from(bucket.limit.max_failures);
    let admitted = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [bucket.key.as_str().into(), now_s.into(), window_s.into(), max.into()],
        ))
        .await
        .context("reserving a login check")?;
    if admitted.is_some() {
        return Ok(());
    }
    let (failures, started) = counted(conn, &bucket.key).await?.unwrap_or((0, now));
    if i64::from(failures) < max {
        return Err(in_progress(bucket.in_progress));
    }
    Err(rate_limited(
        bucket.refusal,
        (started + bucket.limit.window - now).max(time::Duration::ZERO),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// The password was wrong: counted as a failure everywhere.
    Failure,
    /// The password was right: no failure, and this client's failures on this account forgiven.
    Success,
    /// Nothing was decided (a fault, or a later bucket refused): the reservation is given back.
    Release,
}

/// Settles every reservation of one check in one transaction. A success forgives this client's
/// failures on this account (the `pair:` bucket's count goes back to zero). On the fail-safe
/// handle (`db::connect_fail_safe`): what a power cut can take back is the last moments' counts,
/// a few more tries for a guesser once the machine is back, never a credential.
async fn settle(state: &AppState, reserved: &[Bucket], outcome: Settle) -> Result<(), ApiError> {
    let release = "pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END";
    let count = match outcome {
        Settle::Failure => "attempts = attempts + 1",
        Settle::Success => "attempts = CASE WHEN key LIKE 'pair:%' THEN 0 ELSE attempts END",
        Settle::Release => "attempts = attempts",
    };
    let db = &state.db_fail_safe;
    if db.get_database_backend() == DbBackend::Sqlite {
        // SQLite locks the whole database for a write, so one statement for every bucket is
        // atomic and cannot deadlock: one round trip to sqlx's connection thread instead of a
        // transaction's five.
        let sql = format!(
            "UPDATE login_throttle SET {count}, {release} WHERE key IN ({})",
            placeholders(reserved.len())
        );
        let inline = try_inline_write(state.db_fail_safe_inline.as_deref(), |writes| {
            let keys = reserved.iter().map(|bucket| bucket.key.as_str());
            writes.execute(&sql, rusqlite::params_from_iter(keys))
        });
        if inline.is_none() {
            let keys = reserved.iter().map(|bucket| bucket.key.as_str().into());
            db.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, keys)).await?;
        }
        return Ok(());
    }
    // On PostgreSQL, one row per statement. A single `UPDATE … WHERE key IN (…)` locks its rows
    // in whatever order the plan visits them, which PostgreSQL does not keep the same from one
    // statement to the next: two logins settling the same buckets at once deadlocked (one
    // answered 500, seen in 1 of 6 bursts of 64 concurrent logins). Statements that lock one row
    // each, in the order `reserve_all` takes them, cannot.
    let sql = format!("UPDATE login_throttle SET {count}, {release} WHERE key = $1");
    let txn = db.begin().await?;
    for bucket in reserved {
        let key = bucket.key.as_str().into();
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            sql.clone(),
            [key],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Counts a registration from `client` (every attempt, before any hashing) and refuses it over the
/// limit: creating accounts costs a hash each, and is how a guesser would make names to probe.
pub async fn count_registration(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    let now = state.clock.now();
    let limit = state.login_limits.registrations_per_client;
    let sql = "INSERT INTO login_throttle (key, attempts, pending, window_started_at) \
               VALUES ($1, 1, 0, $2) \
               ON CONFLICT (key) DO UPDATE SET \
                 attempts = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN 1 ELSE login_throttle.attempts + 1 END, \
                 window_started_at = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN $2 ELSE login_throttle.window_started_at END \
               RETURNING attempts, window_started_at";
    let backend = state.db.get_database_backend();
    let key = format!("register:{}", throttle_client(client));
    let row = state
        .db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [key.into(), now.unix_timestamp().into(), limit.window.whole_seconds().into()],
        ))
        .await
        .context("counting a registration")?
        .ok_or_else(|| ApiError::internal("login_throttle upsert returned no row"))?;
    let attempts: i64 = row.try_get("", "attempts")?;
    let started = from_unix_seconds(row.try_get("", "window_started_at")?)?;
    limit
        .admit(u32::try_from(attempts).unwrap_or(u32::MAX), started, now)
        .map_err(|wait| rate_limited("too many registrations from this address", wait))
}

/// Replaces a hash made otherwise than the policy says (`Argon2Policy::needs_rehash`), unless the
/// password changed since it was read: a login with the old password racing a password change must
/// never write the old password back.
async fn rehash(
    state: &AppState,
    user: users::Model,
    password: SecretString,
) -> Result<users::Model, ApiError> {
    let new_hash = state.hasher.hash(password.clone()).await?;
    let updated = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(new_hash.clone()))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
        .exec(&state.db)
        .await?;
    if updated.rows_affected == 0 {
        // The row changed since it was checked: a password change, or another login of this user
        // that rehashed it first (two tabs, a burst of logins after the policy changed). Only a
        // change may refuse this login, so the password is checked once more against the row as
        // it is now: the same password rehashed still matches, a changed one does not.
        return still_the_password(state, user.id, password).await;
    }
    tracing::info!(user_id = user.id, "password rehashed with the current policy");
    Ok(users::Model { password_hash: new_hash, ..user })
}

/// The user `user_id` as the database holds them now, if `password` is still theirs.
async fn still_the_password(
    state: &AppState,
    user_id: i64,
    password: SecretString,
) -> Result<users::Model, ApiError> {
    let current = users::Entity::find_by_id(user_id)
        .one(&state.db)
        .await
        .context("reading a user whose hash changed during a login")?
        .ok_or_else(password_changed)?;
    let slot = state.hasher.slot().await?;
    match state.hasher.verify_in(slot, password, Some(current.password_hash.clone())).await? {
        Verification::Match { .. } => Ok(current),
        Verification::Mismatch => Err(password_changed()),
    }
}

fn password_changed() -> ApiError {
    ApiError::refused(Reason::InvalidCredentials, "wrong username or password")
}

/// [`still_current`] where it stands alone, after a login's new credential was committed: through
/// the fail-safe handle, inline on SQLite when the write lock is free (`sqlite_inline`).
#[tracing::instrument(name = "password.still_current", skip_all)]
pub async fn still_current_fail_safe(
    state: &AppState,
    user: &users::Model,
) -> Result<(), ApiError> {
    let inline = try_inline_write(state.db_fail_safe_inline.as_deref(), |writes| {
        writes.execute(
            "UPDATE users SET password_hash = password_hash WHERE id = ?1 AND password_hash = ?2",
            rusqlite::params![user.id, user.password_hash],
        )
    });
    match inline {
        Some(0) => Err(password_changed()),
        Some(_) => Ok(()),
        None => still_current(&state.db_fail_safe, user).await,
    }
}

/// The last step of every login, run on the connection (or in the transaction) that wrote the new
/// credential: refuses when the password checked is no longer the user's. A no-op update that
/// takes the user's row lock, so it waits for a password change in progress (which updates that
/// row first and ends every credential in the same transaction) and then sees its outcome: a login
/// racing a password change either is ended by it or fails here, never survives it. Its write
/// changes nothing, so where it stands alone it can go through the fail-safe handle
/// (`db::connect_fail_safe`): on SQLite the lock it waits for is the same.
#[tracing::instrument(name = "password.still_current", skip_all)]
pub async fn still_current(
    conn: &impl ConnectionTrait,
    user: &users::Model,
) -> Result<(), ApiError> {
    let held = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::col(users::Column::PasswordHash))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
        .exec(conn)
        .await?;
    if held.rows_affected == 0 {
        return Err(password_changed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite_inline::SqliteFailSafeWrites;

    /// The reservation runs through rusqlite inline and through sqlx when the write lock is held
    /// elsewhere: both must bind each parameter where the statement reads it.
    #[tokio::test]
    async fn the_reservation_binds_alike_through_sqlx_and_rusqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("throttle.db");
        let pool = crate::db::PoolLimits {
            max_connections: 2,
            acquire_timeout: std::time::Duration::from_secs(5),
        };
        let db = crate::db::connect_and_migrate(&format!("sqlite://{}", path.display()), pool)
            .await
            .unwrap();
        let writes = SqliteFailSafeWrites::new(&path, db.clone());
        let bucket = |key: &str, window_s: i64, max_failures: u32| Bucket {
            key: key.to_owned(),
            limit: FailureLimit { max_failures, window: time::Duration::seconds(window_s) },
            refusal: "",
            in_progress: "",
        };
        // Different windows and limits in each bucket, so that a parameter read from the wrong
        // place shows.
        let buckets =
            [bucket("client:a", 60, 3), bucket("pair:a|b", 120, 2), bucket("account:b", 180, 5)];
        let now = Timestamp::from_unix_timestamp(1_000_000).unwrap();
        let through_sqlx = || async {
            let (sql, values) = reserve_all_statement(&buckets, now);
            let statement =
                Statement::from_sql_and_values(DbBackend::Sqlite, sql, for_sqlx(values));
            db.query_all_raw(statement).await.unwrap().len()
        };
        let inline = || {
            let (sql, values) = reserve_all_statement(&buckets, now);
            writes.rows(&sql, rusqlite::params_from_iter(values), |_| Ok(())).unwrap().len()
        };
        assert_eq!(through_sqlx().await, 3);
        assert_eq!(inline(), 3);
        // The pair's two checks are taken: a third is refused in every bucket, by either path.
        assert_eq!(inline(), 0);
        assert_eq!(through_sqlx().await, 0);
        let sql =
            "SELECT key, attempts, pending, window_started_at FROM login_throttle ORDER BY key";
        let rows = SqliteReads::sharing(&writes)
            .rows(sql, [], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap();
        let expected =
            ["account:b", "client:a", "pair:a|b"].map(|key| (key.to_owned(), 0, 2, 1_000_000));
        assert_eq!(rows, expected);
    }
}
