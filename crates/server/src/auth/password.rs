//! Checking a username and password: shared by every scheme that logs in with them.
//!
//! Order matters: the attempt is counted (atomically, in the database) *before* the password is
//! checked, so a burst of parallel guesses cannot all slip under the limit; the password is checked
//! the same way whether or not the user exists; and only then is the outcome revealed, with one
//! reason for both failures.

use std::net::IpAddr;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, Statement};
use tokenlab_core::throttle::{FailureLimit, retry_after_seconds};
use tokenlab_core::{Reason, Timestamp};

use secrecy::SecretString;

use crate::clock::from_unix_seconds;
use crate::entities::users;
use crate::error::{ApiError, Context as _};
use crate::hasher::Verification;
use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: FailureLimit,
    pub per_client: FailureLimit,
}

/// Returns the user whose password this is, or refuses with `invalid_credentials` /
/// `rate_limited`.
#[tracing::instrument(name = "password.authenticate", skip_all)]
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
    client: IpAddr,
) -> Result<users::Model, ApiError> {
    let now = state.clock.now();
    // Usernames are at most 32 characters; anything longer cannot exist, but is still counted
    // under a bounded key so that the table cannot be flooded with huge keys.
    let account_key = format!("account:{}", username.chars().take(64).collect::<String>());
    let client_key = format!("client:{client}");
    let limits = state.login_limits;
    count_attempt(state, &account_key, limits.per_account, now)
        .await
        .context("counting a login attempt for the account")?;
    count_attempt(state, &client_key, limits.per_client, now)
        .await
        .context("counting a login attempt for the client")?;

    let user =
        users::Entity::find().filter(users::Column::Username.eq(username)).one(&state.db).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verification =
        state.hasher.verify(password.clone(), stored).await.context("verifying a password")?;
    match (user, verification) {
        (Some(user), Verification::Match { needs_rehash }) => {
            forgive(state, &account_key, &client_key).await?;
            if needs_rehash {
                return rehash(state, user, password).await;
            }
            Ok(user)
        }
        _ => Err(ApiError::refused(Reason::InvalidCredentials, "wrong username or password")),
    }
}

/// Counts one attempt under `key` and refuses it when over the limit.
async fn count_attempt(
    state: &AppState,
    key: &str,
    limit: FailureLimit,
    now: Timestamp,
) -> Result<(), ApiError> {
    let now_s = now.unix_timestamp();
    let window_s = limit.window.whole_seconds();
    // One statement, so concurrent attempts on any number of instances are each counted exactly
    // once. The window test mirrors `FailureLimit::window_over`: a window that is over restarts.
    let sql = "INSERT INTO login_throttle (key, attempts, window_started_at) VALUES ($1, 1, $2) \
               ON CONFLICT (key) DO UPDATE SET \
                 attempts = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN 1 ELSE login_throttle.attempts + 1 END, \
                 window_started_at = CASE WHEN login_throttle.window_started_at + $3 <= $2 \
                            THEN $2 ELSE login_throttle.window_started_at END \
               RETURNING attempts, window_started_at";
    let backend = state.db.get_database_backend();
    let row = state
        .db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [key.into(), now_s.into(), window_s.into()],
        ))
        .await?
        .ok_or_else(|| ApiError::internal("login_throttle upsert returned no row"))?;
    let attempts: i64 = row.try_get("", "attempts")?;
    let window_started_at: i64 = row.try_get("", "window_started_at")?;
    let window_start = from_unix_seconds(window_started_at)?;
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    limit.admit(attempts, window_start, now).map_err(|wait| {
        let seconds = retry_after_seconds(wait);
        ApiError::refused(
            Reason::RateLimited,
            format!("too many failed logins; try again in {seconds} s"),
        )
        .with_retry_after(seconds)
    })
}

/// A successful login clears the account's failures and takes back its own attempt from the
/// client's count (an office behind one address should not be limited by its successful logins).
async fn forgive(state: &AppState, account_key: &str, client_key: &str) -> Result<(), ApiError> {
    let backend = state.db.get_database_backend();
    state
        .db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "DELETE FROM login_throttle WHERE key = $1",
            [account_key.into()],
        ))
        .await?;
    state
        .db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE login_throttle SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
            [client_key.into()],
        ))
        .await?;
    Ok(())
}

/// Upgrades a weak hash, unless the password changed since it was read: a login with the old
/// password racing a password change must never write the old password back.
async fn rehash(
    state: &AppState,
    user: users::Model,
    password: SecretString,
) -> Result<users::Model, ApiError> {
    let new_hash = state.hasher.hash(password).await?;
    let updated = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(new_hash.clone()))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
        .exec(&state.db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(password_changed());
    }
    tracing::info!(user_id = user.id, "password hash upgraded to the current policy");
    Ok(users::Model { password_hash: new_hash, ..user })
}

fn password_changed() -> ApiError {
    ApiError::refused(Reason::InvalidCredentials, "wrong username or password")
}

/// The last step of every login, run on the connection (or in the transaction) that wrote the new
/// credential: refuses when the password checked is no longer the user's. A no-op update that
/// takes the user's row lock, so it waits for a password change in progress (which updates that
/// row first and ends every credential in the same transaction) and then sees its outcome: a login
/// racing a password change either is ended by it or fails here, never survives it.
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
