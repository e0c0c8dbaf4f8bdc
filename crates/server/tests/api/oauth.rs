//! Access + refresh tokens: the token endpoint, rotation, reuse detection, JWT checks, keys.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

use tokenlab_core::Clock as _;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_refused, production, set_cookie, spawn_app, spawn_app_with,
};

/// `{error, reason}` of an RFC 6749 §5.2 error response.
async fn grant_refused(response: Response, reason: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "status for {reason}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["error"].is_string() && body["error_description"].is_string(), "{body}");
}

async fn token_refused(response: Response, reason: &str) {
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    assert_refused(response, StatusCode::UNAUTHORIZED, reason).await;
}

backend_test!(the_token_response_and_a_protected_call);
async fn the_token_response_and_a_protected_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.try_password_grant(&TestUser::alice()).await;
    assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    // The demo's policy is the article's: a month and two months.
    assert_eq!(body["expires_in"], 30 * 86_400);
    assert_eq!(body["refresh_expires_in"], 60 * 86_400);
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 64);

    let response = app.jwt_me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me_body: Value = response.json().await.unwrap();
    assert_eq!(me_body["user"]["username"], "alice");
    assert!(me_body["token"]["jti"].is_string());

    // JSON is accepted as well as the form encoding.
    let json_grant = Client::new()
        .post(app.url("/api/oauth/token"))
        .json(
            &json!({"grant_type": "password", "username": "alice", "password": "wonderland-demo"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_grant.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn grant_errors_follow_rfc_6749() {
    let app = spawn_app(Backend::Sqlite).await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        Client::new().post(app.url("/api/oauth/token")).form(&form).send()
    };
    grant_refused(
        post(vec![("grant_type", "client_credentials")]).await.unwrap(),
        "unsupported_grant_type",
    )
    .await;
    grant_refused(post(vec![("username", "alice")]).await.unwrap(), "invalid_request").await;
    grant_refused(
        post(vec![("grant_type", "password"), ("username", "alice")]).await.unwrap(),
        "invalid_request",
    )
    .await;
    let wrong =
        post(vec![("grant_type", "password"), ("username", "alice"), ("password", "nope-nope")]);
    grant_refused(wrong.await.unwrap(), "invalid_credentials").await;
    grant_refused(
        post(vec![("grant_type", "refresh_token"), ("refresh_token", "made-up")]).await.unwrap(),
        "refresh_invalid",
    )
    .await;
    app.stop().await;
}

backend_test!(refreshing_rotates_and_the_parent_within_grace_gets_the_same_child);
async fn refreshing_rotates_and_the_parent_within_grace_gets_the_same_child(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.password_grant(&TestUser::alice()).await;
    let a = first["refresh_token"].as_str().unwrap().to_owned();

    let rotation = app.refresh(&a).await;
    assert_eq!(refresh_outcome(&rotation).as_deref(), Some("rotated"));
    let b_body: Value = rotation.json().await.unwrap();
    let b = b_body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(a, b, "{backend:?}: rotated");
    assert_ne!(b_body["access_token"], first["access_token"]);

    // A client that lost the response retries with the parent: same child, no alarm.
    let repeat = app.refresh(&a).await;
    assert_eq!(refresh_outcome(&repeat).as_deref(), Some("repeated"));
    let again: Value = repeat.json().await.unwrap();
    assert_eq!(again["refresh_token"], b.as_str());
    let c: Value = app.refresh(&b).await.json().await.unwrap();
    assert!(c["refresh_token"].is_string(), "the child is still good: {c}");
    app.stop().await;
}

/// `X-Tokenlab-Refresh`: whether a refresh rotated the token or repeated a rotation.
fn refresh_outcome(response: &Response) -> Option<String> {
    let value = response.headers().get("x-tokenlab-refresh")?;
    Some(value.to_str().ok()?.to_owned())
}

backend_test!(a_rotated_token_after_the_grace_revokes_the_whole_family);
async fn a_rotated_token_after_the_grace_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let a =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    let b_body: Value = app.refresh(&a).await.json().await.unwrap();
    let b = b_body["refresh_token"].as_str().unwrap().to_owned();
    app.advance_clock(11).await;
    grant_refused(app.refresh(&a).await, "refresh_reused").await;
    // The newest token of the family dies too: whoever holds it must log in again.
    grant_refused(app.refresh(&b).await, "refresh_revoked").await;
    app.stop().await;
}

backend_test!(fifty_parallel_refreshes_rotate_once);
async fn fifty_parallel_refreshes_rotate_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let a =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let (url, a) = (app.url("/api/oauth/token"), a.clone());
            tokio::spawn(async move {
                let response = Client::new()
                    .post(url)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", a.as_str())])
                    .send()
                    .await
                    .unwrap();
                let outcome = refresh_outcome(&response);
                (response.status(), outcome, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut children = std::collections::BTreeSet::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for call in calls {
        let (status, outcome, body) = call.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        children.insert(body["refresh_token"].as_str().unwrap().to_owned());
        *outcomes.entry(outcome.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(children.len(), 1, "exactly one rotation");
    // The answers say so themselves: one rotated the token, every other one repeated it.
    let expected = [("repeated".to_owned(), 49), ("rotated".to_owned(), 1)];
    assert_eq!(outcomes, expected.into_iter().collect(), "{backend:?}");
    let child = children.into_iter().next().unwrap();
    assert_eq!(app.refresh(&child).await.status(), StatusCode::OK, "family not revoked");
    app.stop().await;
}

backend_test!(expiry_on_the_demo_clock);
async fn expiry_on_the_demo_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.password_grant(&TestUser::alice()).await;
    let access = tokens["access_token"].as_str().unwrap();
    let a = tokens["refresh_token"].as_str().unwrap();
    app.advance_clock(31 * 86_400).await;
    token_refused(app.jwt_me(access).await, "token_expired").await;
    // The refresh token (two months) still works, and its access token is good.
    let renewed: Value = app.refresh(a).await.json().await.unwrap();
    let fresh = renewed["access_token"].as_str().unwrap();
    assert_eq!(app.jwt_me(fresh).await.status(), StatusCode::OK);

    // Two months after login the family is over: log in again.
    let b = renewed["refresh_token"].as_str().unwrap();
    app.advance_clock(30 * 86_400).await;
    grant_refused(app.refresh(b).await, "refresh_expired").await;
    app.stop().await;
}

backend_test!(revocation_kills_the_family_and_always_answers_200);
async fn revocation_kills_the_family_and_always_answers_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let a =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    for token in [a.as_str(), "never-issued"] {
        let response = Client::new()
            .post(app.url("/api/oauth/revoke"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    grant_refused(app.refresh(&a).await, "refresh_revoked").await;
    app.stop().await;
}

/// The server's current signing key, read from its database as an attacker with a copy of it
/// could: lets the tests sign tokens whose only fault is in their claims.
async fn server_signing_key(app: &TestApp) -> (String, EncodingKey, String) {
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kid, secret, public FROM server_keys WHERE kind = 'ed25519' AND retired_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let kid: String = row.try_get("", "kid").unwrap();
    let secret: String = row.try_get("", "secret").unwrap();
    let public: String = row.try_get("", "public").unwrap();
    (kid, EncodingKey::from_ed_der(&STANDARD.decode(secret).unwrap()), public)
}

type Claims = serde_json::Map<String, Value>;

fn claims(app: &TestApp, now: i64) -> Claims {
    json!({
        "iss": app.base, "aud": "tokenlab-api", "sub": "1", "iat": now, "nbf": now,
        "exp": now + 600, "jti": "test-jti", "sid": "test-sid", "preferred_username": "alice"
    })
    .as_object()
    .unwrap()
    .clone()
}

backend_test!(forged_and_malformed_tokens_are_refused);
async fn forged_and_malformed_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let good =
        app.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    let (kid, key, public) = server_signing_key(&app).await;
    // The server's time (its demo clock has not moved), which the claims below are checked against.
    let now = app.clock.now().unix_timestamp();
    let sign = |claims: &Claims| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    };
    // Sanity: a token signed this way with good claims is accepted, so refusals below are
    // caused by what each case changes.
    assert_eq!(app.jwt_me(&sign(&claims(&app, now))).await.status(), StatusCode::OK);

    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let mut forged = vec![
        ("alg none", format!("{}.{}.", b64(json!({"alg": "none", "typ": "JWT"})), parts[1])),
        ("flipped signature", {
            let mut sig = parts[2].to_owned();
            let last = if sig.ends_with('A') { "B" } else { "A" };
            sig.replace_range(sig.len() - 1.., last);
            format!("{}.{}.{}", parts[0], parts[1], sig)
        }),
        ("HS256 with the public key", {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.clone());
            let secret = URL_SAFE_NO_PAD.decode(&public).unwrap();
            jsonwebtoken::encode(&header, &claims(&app, now), &EncodingKey::from_secret(&secret))
                .unwrap()
        }),
        ("unknown kid", {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            let der = other.to_pkcs8_der().unwrap();
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("not-ours".into());
            jsonwebtoken::encode(
                &header,
                &claims(&app, now),
                &EncodingKey::from_ed_der(der.as_bytes()),
            )
            .unwrap()
        }),
        ("no kid", {
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims(&app, now), &key).unwrap()
        }),
    ];
    // Each case sets a claim to a value, or removes it (`None`).
    let altered: [(&str, &str, Option<Value>); 12] = [
        ("missing exp", "exp", None),
        ("exp as a string", "exp", Some(json!("soon"))),
        ("missing nbf", "nbf", None),
        ("nbf in the future", "nbf", Some(json!(now + 3600))),
        ("wrong aud", "aud", Some(json!("someone-else"))),
        ("wrong iss", "iss", Some(json!("https://evil.example"))),
        ("missing iss", "iss", None),
        ("missing sub", "sub", None),
        ("sub not a number", "sub", Some(json!(["1"]))),
        ("missing jti", "jti", None),
        ("missing iat", "iat", None),
        ("missing sid (a token minted before logins could be ended)", "sid", None),
    ];
    for (name, claim, value) in altered {
        let mut c = claims(&app, now);
        match value {
            Some(value) => c.insert(claim.into(), value),
            None => c.remove(claim),
        };
        forged.push((name, sign(&c)));
    }
    for (name, token) in forged {
        let response = app.jwt_me(&token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{backend:?}: {name}");
        token_refused(response, "token_invalid").await;
    }
    // Expired beyond the leeway: refused as expired.
    let mut old = claims(&app, now - 3600);
    old.insert("exp".into(), json!(now - 6));
    token_refused(app.jwt_me(&sign(&old)).await, "token_expired").await;
    let missing = Client::new().get(app.url("/api/jwt/me")).send().await.unwrap();
    assert_refused(missing, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    app.stop().await;
}

backend_test!(an_old_key_verifies_until_it_is_retired);
async fn an_old_key_verifies_until_it_is_retired(backend: Backend) {
    let app = spawn_app(backend).await;
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let old_kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");

    let before =
        app.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    let rotated: Value =
        app.post_json("/api/demo/keys/rotate", &json!({})).await.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let after =
        app.password_grant(&TestUser::alice()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    assert_eq!(app.jwt_me(&before).await.status(), StatusCode::OK, "old key still verifies");
    let retire = app.post_json("/api/demo/keys/retire", &json!({"kid": old_kid})).await;
    assert_eq!(retire.status(), StatusCode::NO_CONTENT);
    token_refused(app.jwt_me(&before).await, "token_invalid").await;
    assert_eq!(app.jwt_me(&after).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_bearer_caller_can_place_orders_and_no_refresh_token_is_stored_in_clear);
async fn a_bearer_caller_can_place_orders_and_no_refresh_token_is_stored_in_clear(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tokens = app.password_grant(&TestUser::alice()).await;
    let response = Client::new()
        .post(app.url("/api/orders"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("idempotency-key", "bearer-1")
        .json(&json!({"item": "tea", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{backend:?}");

    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].try_get("", "token_hash").unwrap();
    assert_ne!(stored, refresh_token);
    assert_eq!(stored.len(), 64);
    app.stop().await;
}

backend_test!(the_browser_variant_keeps_the_refresh_token_in_an_http_only_cookie);
async fn the_browser_variant_keeps_the_refresh_token_in_an_http_only_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Client::builder().cookie_store(true).build().unwrap();
    let login = browser
        .post(app.url("/api/oauth/token"))
        .header("x-refresh-cookie", "1")
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["tl_refresh=", "HttpOnly", "SameSite=Strict", "Path=/api/oauth"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let body: Value = login.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "not in the page's reach: {body}");
    assert!(body["access_token"].is_string());

    // Refresh and revoke read the cookie; the family shows as a chain.
    let refreshed = browser
        .post(app.url("/api/oauth/token"))
        .header("x-refresh-cookie", "1")
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK, "{backend:?}");
    let family: Value =
        browser.get(app.url("/api/oauth/family")).send().await.unwrap().json().await.unwrap();
    let states: Vec<_> =
        family["tokens"].as_array().unwrap().iter().map(|t| t["state"].clone()).collect();
    assert_eq!(states, vec![json!("rotated"), json!("active")], "{family}");
    assert_eq!(family["tokens"][1]["presented"], true);

    let revoked = browser
        .post(app.url("/api/oauth/revoke"))
        .form(&[("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(revoked.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let after = Client::new().get(app.url("/api/oauth/family")).send().await.unwrap();
    assert_refused(after, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}

backend_test!(a_password_change_revokes_every_refresh_family_of_the_user);
async fn a_password_change_revokes_every_refresh_family_of_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let phone =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    let laptop =
        app.password_grant(&TestUser::alice()).await["refresh_token"].as_str().unwrap().to_owned();
    let change = |current: &str, new: &str| {
        Client::new()
            .post(app.url("/api/accounts/password"))
            .json(&json!({"username": "alice", "current_password": current, "new_password": new}))
            .send()
    };
    let wrong = change("not-her-password", "a brand new password").await.unwrap();
    assert_refused(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let weak = change("wonderland-demo", "short").await.unwrap();
    assert_refused(weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;

    let changed = change("wonderland-demo", "a brand new password").await.unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT, "{backend:?}");
    for token in [&phone, &laptop] {
        grant_refused(app.refresh(token).await, "refresh_revoked").await;
    }
    let alice = TestUser::alice();
    grant_refused(app.try_password_grant(&alice).await, "invalid_credentials").await;
    let new = app.try_password_grant(&alice.with_password("a brand new password")).await;
    assert_eq!(new.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(over_https_only_the_secure_prefixed_refresh_cookie_counts);
async fn over_https_only_the_secure_prefixed_refresh_cookie_counts(backend: Backend) {
    let app = spawn_app_with(backend, production).await;
    let user = app.register_user().await;
    let login = Client::new()
        .post(app.url("/api/oauth/token"))
        .header("x-refresh-cookie", "1")
        .form(&[
            ("grant_type", "password"),
            ("username", user.username.as_str()),
            ("password", user.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let refresh = set_cookie(&login, "__Secure-tl_refresh").expect("the __Secure- cookie is set");
    let with_cookie = |cookie: String| {
        Client::new()
            .post(app.url("/api/oauth/token"))
            .header("x-refresh-cookie", "1")
            .header("cookie", cookie)
            .form(&[("grant_type", "refresh_token")])
            .send()
    };
    // The same value under the unprefixed name — what a sibling subdomain or a plain-http page
    // could plant — is not read at all.
    let planted = with_cookie(format!("tl_refresh={refresh}")).await.unwrap();
    grant_refused(planted, "invalid_request").await;
    let genuine = with_cookie(format!("__Secure-tl_refresh={refresh}")).await.unwrap();
    assert_eq!(genuine.status(), StatusCode::OK, "{backend:?}");
    app.stop().await;
}
