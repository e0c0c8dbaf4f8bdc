//! What each scheme's check costs the server, counted in database statements
//! (`X-Tokenlab-Db-Queries`), and the bounds the in-memory copies that make it cheap must keep.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Credential, TestUser, assert_refused, set_cookie, spawn_app, spawn_app_with,
};

fn statements(response: &Response) -> u32 {
    response.headers()["x-tokenlab-db-queries"].to_str().unwrap().parse().unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

backend_test!(an_access_token_costs_no_statement);
async fn an_access_token_costs_no_statement(backend: Backend) {
    let app = spawn_app(backend).await;
    let access =
        app.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    // The first use verifies the signature, later ones find it verified: neither asks the database.
    for _ in 0..3 {
        let me = app.jwt_me(&access).await;
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(statements(&me), 0, "{backend:?}");
    }
    app.stop().await;
}

backend_test!(a_retired_key_ends_its_tokens_at_once_here_and_within_a_second_everywhere);
async fn a_retired_key_ends_its_tokens_at_once_here_and_within_a_second_everywhere(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;
    let access =
        a.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    // Both instances have verified (and cached) the token.
    assert_eq!(a.jwt_me(&access).await.status(), StatusCode::OK);
    assert_eq!(b.jwt_me(&access).await.status(), StatusCode::OK);

    let rotated: Value =
        a.post_json("/api/demo/keys/rotate", &json!({})).await.json().await.unwrap();
    let newer =
        a.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&newer), rotated["kid"], "{backend:?}: the rotating instance signs at once");

    let retired_at = Instant::now();
    let retire = a.post_json("/api/demo/keys/retire", &json!({"kid": kid_of(&access)})).await;
    assert_eq!(retire.status(), StatusCode::NO_CONTENT);
    assert_refused(a.jwt_me(&access).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let refused_after = loop {
        let response = b.jwt_me(&access).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_refused(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
            break retired_at.elapsed();
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(retired_at.elapsed() < Duration::from_secs(5), "never refused on B");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("{backend:?}: instance B refused the retired key's token after {refused_after:?}");
    assert!(refused_after < Duration::from_secs(1), "{backend:?}: {refused_after:?}");
    // The new key verifies on B too, without a statement.
    let me = b.jwt_me(&newer).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(statements(&me), 0);
    b.stop().await;
    a.stop().await;
}

backend_test!(a_verified_token_is_still_refused_once_it_expires);
async fn a_verified_token_is_still_refused_once_it_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let switched = app
        .client
        .put(app.url("/api/demo/policy"))
        .json(&json!({"name": "recommended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::OK);
    let grant = app.password_grant(&TestUser::alice()).await;
    let access = grant["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.jwt_me(&access).await.status(), StatusCode::OK, "verified and cached");
    let lifetime = grant["expires_in"].as_i64().unwrap();
    app.advance_clock(lifetime + 60).await;
    assert_refused(app.jwt_me(&access).await, StatusCode::UNAUTHORIZED, "token_expired").await;
    app.stop().await;
}

backend_test!(a_login_writes_its_new_session_once);
async fn a_login_writes_its_new_session_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = TestUser::alice();
    // What every login costs whether its password is right or wrong: the throttle's look at its
    // buckets, its reservation and settlement, and the user's row.
    let refused = app.try_session_login(&alice.with_password("not her password")).await;
    let refused_statements = statements(&refused);
    assert_refused(refused, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let login = app.try_session_login(&alice).await;
    assert_eq!(login.status(), StatusCode::OK);
    // On top of that a login that succeeds creates its session and checks that the password is
    // still hers — and does not write the session it has just created a second time when the
    // session layer saves after the handler.
    assert_eq!(
        statements(&login),
        refused_statements + 2,
        "{backend:?}: the session created, the password checked still current"
    );
    let cookie = Credential::Session(set_cookie(&login, "tl_session").expect("a session cookie"));
    assert_eq!(app.session_me(&cookie).await.status(), StatusCode::OK, "{backend:?}");
    app.stop().await;
}

backend_test!(a_session_costs_one_read_and_a_write_once_a_minute);
async fn a_session_costs_one_read_and_a_write_once_a_minute(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.session_login(&TestUser::alice()).await;
    let first = app.session_me(&alice).await;
    assert_eq!(statements(&first), 1, "{backend:?}: the session's row, read");
    let first: Value = first.json().await.unwrap();
    // Within the minute: read, and nothing written; the idle expiry stands.
    app.advance_clock(59).await;
    let within = app.session_me(&alice).await;
    assert_eq!(statements(&within), 1, "{backend:?}");
    let within: Value = within.json().await.unwrap();
    assert_eq!(within["session"]["idle_expires_at"], first["session"]["idle_expires_at"]);
    // A minute on: read, and the slid expiry written back once.
    app.advance_clock(1).await;
    let after = app.session_me(&alice).await;
    assert_eq!(statements(&after), 2, "{backend:?}: read, then one write");
    let after: Value = after.json().await.unwrap();
    assert_ne!(after["session"]["idle_expires_at"], first["session"]["idle_expires_at"]);
    assert_eq!(statements(&app.session_me(&alice).await), 1, "{backend:?}: and then reads again");
    app.stop().await;
}

backend_test!(a_device_on_a_live_session_costs_one_read_and_writes_once_a_minute);
async fn a_device_on_a_live_session_costs_one_read_and_writes_once_a_minute(backend: Backend) {
    let app = spawn_app(backend).await;
    let phone = app.device_login(&TestUser::alice(), "phone-cost-1", "hardened").await;
    let first = app.device_me(&phone.credential).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(statements(&first), 1, "{backend:?}: the session, compared with its copy");
    app.advance_clock(59).await;
    assert_eq!(statements(&app.device_me(&phone.credential).await), 1, "{backend:?}");
    // A minute on: the session's slid expiry and the device's last_seen_at, one write each.
    app.advance_clock(1).await;
    let after = app.device_me(&phone.credential).await;
    assert_eq!(statements(&after), 3, "{backend:?}: read, session write, device write");
    let body: Value = after.json().await.unwrap();
    let seen = time::OffsetDateTime::parse(
        body["device"]["last_seen_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let stored =
        app.count("SELECT last_seen_at AS n FROM devices WHERE device_id = 'phone-cost-1'").await;
    assert_eq!(seen.unix_timestamp(), stored, "{backend:?}: the answer and the row agree");
    assert_eq!(statements(&app.device_me(&phone.credential).await), 1, "{backend:?}");
    app.stop().await;
}

backend_test!(revoking_a_device_ends_its_live_session_without_the_session_reading_the_device);
async fn revoking_a_device_ends_its_live_session_without_the_session_reading_the_device(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let phone = app.device_login(&TestUser::alice(), "phone-cost-2", "hardened").await;
    let laptop = app.device_login(&TestUser::alice(), "laptop-cost-2", "hardened").await;
    assert_eq!(statements(&app.device_me(&phone.credential).await), 1);
    // The laptop revokes the phone; the phone's session is gone with it.
    let id = phone.body["device"]["id"].as_i64().unwrap();
    let revoked = laptop
        .credential
        .apply(app.client.delete(app.url(&format!("/api/device/devices/{id}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_refused(
        app.device_me(&phone.credential).await,
        StatusCode::UNAUTHORIZED,
        "device_revoked",
    )
    .await;
    app.stop().await;
}

backend_test!(a_refresh_token_not_in_the_issued_form_is_refused_without_a_lookup);
async fn a_refresh_token_not_in_the_issued_form_is_refused_without_a_lookup(backend: Backend) {
    let app = spawn_app(backend).await;
    let issued =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    // Made-up, the issued one in capitals, one character short: not 64 lowercase hex digits.
    for presented in ["made-up", &issued.to_uppercase(), &issued[1..]] {
        let response = app.refresh(presented).await;
        assert_eq!(statements(&response), 0, "{backend:?}: {presented}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["reason"], "refresh_invalid", "{body}");
    }
    // In the issued form but unknown: the lookup that says so, and nothing more.
    let unknown = "0".repeat(64);
    let response = app.refresh(&unknown).await;
    assert_eq!(statements(&response), 1, "{backend:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "refresh_invalid", "{body}");
    // And the issued one still works.
    assert_eq!(app.refresh(&issued).await.status(), StatusCode::OK);
    app.stop().await;
}

/// Puts `phc` in `username`'s row, as a restored backup or an import would.
async fn plant_hash(db: &sea_orm::DatabaseConnection, username: &str, phc: &str) {
    use sea_orm::ConnectionTrait as _;
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE users SET password_hash = $1 WHERE username = $2",
        [phc.into(), username.into()],
    ))
    .await
    .unwrap();
}

/// The PHC string in `username`'s row.
async fn stored_hash(db: &sea_orm::DatabaseConnection, username: &str) -> String {
    use sea_orm::ConnectionTrait as _;
    db.query_one_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT password_hash FROM users WHERE username = $1",
        [username.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<String>("", "password_hash")
    .unwrap()
}

/// `password` hashed by the `argon2` crate itself with these settings, as another program would.
fn argon2id_hash(version: argon2::Version, params: (u32, u32, u32), password: &str) -> String {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let (memory_kib, passes, lanes) = params;
    let params = argon2::Params::new(memory_kib, passes, lanes, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, version, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}

/// What this server writes: argon2id, version 0x13, the policy's parameters.
const POLICY_HASH_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

backend_test!(a_stored_hash_asking_for_more_than_the_policy_affords_is_refused_not_computed);
/// The cost of a password check is read from the user's row. A row written by something other
/// than this server (a restored backup, a bad import, someone with the database's password) may
/// ask for 2³² − 1 passes: computed, it would hold a hashing worker for hours, and every login
/// behind it would wait for a slot until it gave up. It is refused at once instead (a 500, whose
/// cause the log names), and the workers go on serving everyone else.
async fn a_stored_hash_asking_for_more_than_the_policy_affords_is_refused_not_computed(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| s.hash_concurrency = Some(1)).await;
    let victim = app.register_user().await;
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let hostile = "$argon2id$v=19$m=19456,t=4294967295,p=1$c29tZXNhbHQ$\
                   CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    plant_hash(&db, &victim.username, hostile).await;
    // Four at once, more than the one hashing worker, so that a computed hash would leave the
    // others waiting too. Each must be answered long before any such hash could end (the client
    // gives up after 20 s).
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let login = || {
        let body = json!({"username": victim.username, "password": victim.password});
        client.post(app.url("/api/session/login")).json(&body).send()
    };
    let answers = futures::future::join_all((0..4).map(|_| login())).await;
    for answer in answers {
        let answer = answer.expect("answered before the client gave up");
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR, "{backend:?}");
    }
    assert_eq!(app.try_session_login(&TestUser::alice()).await.status(), StatusCode::OK);
    db.close().await.unwrap();
    app.stop().await;
}

backend_test!(a_stored_hash_made_otherwise_than_the_policy_is_rehashed_at_its_next_login);
/// A row hashed otherwise than this server hashes (a weaker policy, a costlier one, an older
/// argon2 version) is rehashed with the policy once its password has been checked: a weaker row
/// then resists guessing as the policy says, and a costlier one stops costing the shared hashing
/// pool up to sixteen policy hashes and four times their memory at each of its logins. A wrong
/// password changes nothing.
async fn a_stored_hash_made_otherwise_than_the_policy_is_rehashed_at_its_next_login(
    backend: Backend,
) {
    use argon2::Version;

    let app = spawn_app(backend).await;
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let cases = [
        ("weaker", Version::V0x13, (8_192, 1, 1)),
        ("costlier", Version::V0x13, (2 * 19_456, 3, 1)),
        ("more lanes", Version::V0x13, (19_456, 2, 2)),
        ("argon2 1.0", Version::V0x10, (19_456, 2, 1)),
    ];
    for (what, version, params) in cases {
        let user = app.register_user().await;
        let planted = argon2id_hash(version, params, &user.password);
        assert!(!planted.starts_with(POLICY_HASH_PREFIX), "{what}: {planted}");
        plant_hash(&db, &user.username, &planted).await;

        let wrong = TestUser::new(&user.username, "not the password");
        assert_eq!(app.try_session_login(&wrong).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(stored_hash(&db, &user.username).await, planted, "{backend:?} {what}");

        assert_eq!(app.try_session_login(&user).await.status(), StatusCode::OK, "{what}");
        let rehashed = stored_hash(&db, &user.username).await;
        assert!(rehashed.starts_with(POLICY_HASH_PREFIX), "{backend:?} {what}: {rehashed}");
        assert_eq!(app.try_session_login(&user).await.status(), StatusCode::OK, "{what}");
        assert_eq!(stored_hash(&db, &user.username).await, rehashed, "{what}: once");
    }
    db.close().await.unwrap();
    app.stop().await;
}

backend_test!(logins_at_once_on_a_row_made_otherwise_than_the_policy_all_log_in);
/// Two tabs, or a burst of logins just after the policy changed: every login that checked the old
/// row with the right password rehashes it, and only the first rehash lands. The others find the
/// row changed under them, as a password change would change it; they must tell the two apart
/// (the row now holds the same password) rather than refuse a correct password.
async fn logins_at_once_on_a_row_made_otherwise_than_the_policy_all_log_in(backend: Backend) {
    // One hashing worker: every login's check is queued before the first rehash lands, so each
    // checks the planted row.
    let app = spawn_app_with(backend, |s| s.hash_concurrency = Some(1)).await;
    let user = app.register_user().await;
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let weak = argon2id_hash(argon2::Version::V0x13, (8_192, 1, 1), &user.password);
    plant_hash(&db, &user.username, &weak).await;
    let logins = futures::future::join_all((0..2).map(|_| app.try_session_login(&user))).await;
    for login in logins {
        assert_eq!(login.status(), StatusCode::OK, "{backend:?}");
    }
    let stored = stored_hash(&db, &user.username).await;
    assert!(stored.starts_with(POLICY_HASH_PREFIX), "{backend:?}: {stored}");
    db.close().await.unwrap();
    app.stop().await;
}
