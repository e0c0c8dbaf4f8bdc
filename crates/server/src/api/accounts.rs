use axum::extract::State;
use axum::http::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait as _, EntityTrait as _, QueryFilter as _,
    SqlErr, TransactionTrait as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use tokenlab_core::Reason;
use tokenlab_core::account::{validate_password, validate_username};
use tokenlab_core::wire::Account;
use tokenlab_core::wire::credentials::{NewAccount, PasswordChange};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::refusals::{JSON_BODY, PASSWORD_CHECK, PASSWORD_HASH, STATE_CHANGING, refusals};
use crate::auth::Caller;
use crate::auth::session::SESSION_COOKIE;
use crate::auth::signout::{self, Current};
use crate::clock::unix_seconds;
use crate::entities::users;
use crate::error::{ApiError, ApiJson, Context as _};
use crate::state::AppState;

pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let routes =
        OpenApiRouter::new().routes(routes!(create_account)).routes(routes!(change_password));
    // The session layer lets a session-cookie caller who changes the password stay signed in.
    state.cookies.with_session(routes, state.session_store.clone(), SESSION_COOKIE)
}

refusals!(
    CreateAccountRefusals = STATE_CHANGING,
    JSON_BODY,
    PASSWORD_HASH,
    &[Reason::InvalidUsername, Reason::WeakPassword, Reason::UsernameTaken, Reason::RateLimited],
);

/// Register a user. Registrations are counted per client address (`rate_limited`, with
/// `Retry-After`).
#[utoipa::path(
    post,
    path = "/accounts",
    tag = "accounts",
    request_body = NewAccount,
    responses((status = 201, description = "Created", body = Account), CreateAccountRefusals)
)]
async fn create_account(
    State(state): State<AppState>,
    crate::guard::ClientIp(client): crate::guard::ClientIp,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<(StatusCode, ApiJson<Account>), ApiError> {
    crate::auth::password::count_registration(&state, client).await?;
    let account = register(&state, &body.username, body.password).await?;
    Ok((StatusCode::CREATED, ApiJson(account)))
}

/// Creates an account; also used to seed the demo user.
pub async fn register(
    state: &AppState,
    username: &str,
    password: SecretString,
) -> Result<Account, ApiError> {
    let username = validate_username(username)?;
    validate_password(password.expose_secret())?;
    let password_hash = state.hasher.hash(password).await?;
    let inserted = users::ActiveModel {
        username: Set(username.into_inner()),
        password_hash: Set(password_hash),
        created_at: Set(unix_seconds(state.clock.now())),
        ..Default::default()
    }
    .insert(&state.db)
    .await;
    match inserted {
        Ok(user) => Ok(Account { id: user.id, username: user.username }),
        // The unique index decides, so two racing registrations yield one account and one 409.
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(ApiError::refused(Reason::UsernameTaken, "this username is taken"))
        }
        Err(err) => Err(err.into()),
    }
}

refusals!(
    ChangePasswordRefusals = STATE_CHANGING,
    JSON_BODY,
    PASSWORD_CHECK,
    PASSWORD_HASH,
    &[Reason::WeakPassword],
);

/// Change a password. Every other sign-in of the user ends with it, in the same transaction as the
/// new hash: every server session, device and refresh family, and every access token minted from
/// those families. A request made with a sign-in of the same user (session cookie, device headers
/// or access token) keeps that one; no sign-in is needed, only the current password.
#[utoipa::path(
    post,
    path = "/accounts/password",
    tag = "accounts",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other sign-in of the user has ended"),
        ChangePasswordRefusals,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    crate::guard::ClientIp(client): crate::guard::ClientIp,
    caller: Result<Caller, ApiError>,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    validate_password(body.new_password.expose_secret())?;
    let user =
        crate::auth::password::authenticate(&state, &body.username, body.current_password, client)
            .await?;
    let keep = match caller {
        Ok(caller) if caller.user_id == user.id => caller.current(),
        _ => Current::default(),
    };
    let new_hash = state.hasher.hash(body.new_password).await?;
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    // The user's row first: its lock makes a login racing this change wait for it, then fail
    // (`login::still_current`).
    let changed = users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(new_hash))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::PasswordHash.eq(user.password_hash.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        // Another change won the race; the current password checked above is no longer it.
        return Err(ApiError::refused(Reason::InvalidCredentials, "wrong username or password"));
    }
    let ended =
        signout::end_all(&txn, &state.session_store, user.id, &keep, "password_changed", now)
            .await
            .context("ending every other sign-in at a password change")?;
    txn.commit().await.context("committing a password change")?;
    signout::end_all_again_after_commit(&state, user.id, &keep).await?;
    state.revoked_families.reload_after_change(&state.db, state.clock.as_ref()).await;
    tracing::info!(user_id = user.id, ?ended, "password changed; other sign-ins ended");
    Ok(StatusCode::NO_CONTENT)
}
