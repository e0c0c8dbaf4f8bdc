//! The lab's demo controls: the server-state inspector (and its secrecy), "reset demo", "expire
//! every server session now" with the per-request query count, and token-policy presets.

use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Credential, TestApp, TestUser, assert_refused, production, spawn_app, spawn_app_with,
};

fn queries(response: &Response) -> u32 {
    response.headers()["x-tokenlab-db-queries"].to_str().unwrap().parse().unwrap()
}

async fn choose_policy(app: &TestApp, name: &str) -> Response {
    app.client.put(app.url("/api/demo/policy")).json(&json!({ "name": name })).send().await.unwrap()
}

async fn inspect(app: &TestApp) -> (String, Value) {
    let response = app.get("/api/demo/inspector").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap();
    (text, body)
}

/// Every stored hash and key in the database, as an attacker with a copy of it would see them.
async fn stored_hashes(app: &TestApp) -> Vec<String> {
    let db = sea_orm::Database::connect(app.database_url()).await.unwrap();
    let columns = [
        "SELECT id_hash AS v FROM sessions",
        "SELECT token_hash AS v FROM devices WHERE token_hash IS NOT NULL",
        "SELECT previous_token_hash AS v FROM devices WHERE previous_token_hash IS NOT NULL",
        "SELECT token AS v FROM devices WHERE token IS NOT NULL",
        "SELECT token_hash AS v FROM refresh_tokens",
        "SELECT child_hash AS v FROM refresh_tokens WHERE child_hash IS NOT NULL",
        "SELECT id AS v FROM refresh_families",
        "SELECT token_hash AS v FROM form_tokens",
        "SELECT secret AS v FROM server_keys",
    ];
    let mut values = Vec::new();
    for sql in columns {
        for row in
            db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap()
        {
            values.push(row.try_get::<String>("", "v").unwrap());
        }
    }
    db.close().await.unwrap();
    values
}

backend_test!(the_inspector_shows_every_scheme_and_never_a_secret);
async fn the_inspector_shows_every_scheme_and_never_a_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut secrets = Vec::new();

    let alice = TestUser::alice();

    let browser = app.session_login(&alice).await;
    secrets.push(browser.session_cookie().to_owned());

    let written = app.device_login(&alice, "phone-of-alice-1234", "as_written").await.credential;
    secrets.push(written.device_cookie().to_owned());
    secrets.push("phone-of-alice-1234".to_owned());
    let hardened = app.device_login(&alice, "laptop-5678", "hardened").await.credential;
    secrets.push(hardened.device_cookie().to_owned());
    secrets.push(hardened.device_token().to_owned());

    let tokens = app.password_grant(&alice).await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(first_refresh.clone());
    secrets.push(tokens["access_token"].as_str().unwrap().to_owned());
    let rotated: Value = app.refresh(&first_refresh).await.json().await.unwrap();
    secrets.push(rotated["refresh_token"].as_str().unwrap().to_owned());
    secrets.push(rotated["access_token"].as_str().unwrap().to_owned());

    let form: Value = app.get_as("/api/orders/form-token", &browser).await.json().await.unwrap();
    let form_token = form["form_token"].as_str().unwrap().to_owned();
    secrets.push(form_token.clone());
    let order = browser
        .apply(Client::new().post(app.url("/api/orders")))
        .json(&json!({"item": "green tea", "quantity": 2, "form_token": form_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), StatusCode::CREATED);
    // The order is written on a task of its own; its statements still count for the request:
    // the session lookup, spending the token and inserting the order at least.
    assert!(queries(&order) >= 3, "{} statements", queries(&order));
    let keyed = browser
        .apply(Client::new().post(app.url("/api/orders")))
        .header("idempotency-key", "order-42")
        .json(&json!({"item": "oolong", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), StatusCode::CREATED);

    let (text, state) = inspect(&app).await;
    assert_eq!(state["user"]["username"], "alice");
    let cookies: Vec<&str> = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cookie"].as_str().unwrap())
        .collect();
    assert_eq!(cookies.iter().filter(|c| **c == "tl_session").count(), 1, "{cookies:?}");
    assert_eq!(cookies.iter().filter(|c| **c == "tl_device").count(), 2, "{cookies:?}");
    assert!(state["sessions"].as_array().unwrap().iter().all(|s| s["state"] == "live"));

    let devices = state["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["mode"], "as_written");
    assert!(devices[0]["stored_token"].as_str().unwrap().starts_with("plain text: "));
    assert_eq!(devices[0]["expires_at"], Value::Null, "as written never expires");
    assert_eq!(devices[1]["mode"], "hardened");
    assert_eq!(devices[1]["device_id"], "laptop-5678");
    assert!(devices[1]["stored_token"].as_str().unwrap().starts_with("SHA-256 "));

    let families = state["refresh_families"].as_array().unwrap();
    assert_eq!(families.len(), 1);
    assert_eq!(families[0]["state"], "active");
    let chain = families[0]["tokens"].as_array().unwrap();
    let chain_states: Vec<&str> = chain.iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(chain_states, ["rotated", "current"]);
    assert_eq!(chain[1]["parent_hash_prefix"], chain[0]["hash_prefix"]);

    assert_eq!(state["form_tokens"][0]["spent_on_order"], state["orders"][0]["id"]);
    assert_eq!(state["idempotency_keys"][0]["key"], "order-42");
    assert_eq!(state["idempotency_keys"][0]["state"], "finished");
    assert_eq!(state["orders"].as_array().unwrap().len(), 2);

    // The secrecy rule: neither a credential nor anything the database keeps to check one.
    let hashes = stored_hashes(&app).await;
    assert!(hashes.len() >= 10, "the scenario stored hashes: {hashes:?}");
    for secret in secrets.iter().chain(&hashes) {
        assert!(!text.contains(secret.as_str()), "the inspector shows {secret}: {text}");
    }

    // Replaying the rotated refresh token after the grace window revokes the family; the
    // inspector says why, and the chain is dead.
    app.advance_clock(11).await;
    assert_eq!(app.refresh(&first_refresh).await.status(), StatusCode::BAD_REQUEST);
    let (_, state) = inspect(&app).await;
    assert_eq!(state["refresh_families"][0]["state"], "reused");
    let chain_states: Vec<&str> = state["refresh_families"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(chain_states, ["rotated", "revoked"]);

    // Every other demo answer keeps the same rule.
    let mut answers = Vec::new();
    for path in ["/api/demo/clock", "/api/demo/policy"] {
        answers.push((path, app.get(path).await.text().await.unwrap()));
    }
    for path in ["/api/demo/keys/rotate", "/api/demo/sessions/expire", "/api/demo/reset"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        answers.push((path, response.text().await.unwrap()));
    }
    for (path, text) in answers {
        for secret in secrets.iter().chain(&hashes) {
            assert!(!text.contains(secret.as_str()), "{path} shows {secret}");
        }
    }
    assert_refused(
        app.get("/api/demo/inspector?username=nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.stop().await;
}

backend_test!(expiring_every_session_shows_the_three_schemes_side_by_side);
async fn expiring_every_session_shows_the_three_schemes_side_by_side(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = TestUser::alice();
    let session = app.session_login(&alice).await;
    // As written, the device's token is its id: `phone-1234`.
    let device = app.device_login(&alice, "phone-1234", "as_written").await.credential;
    let access = app.password_grant(&alice).await["access_token"].as_str().unwrap().to_owned();

    let expired: Value = app
        .client
        .post(app.url("/api/demo/sessions/expire"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(expired["expired"], 2, "{expired}");

    // Scheme 2: the session is gone and only a new login helps (C7).
    let session_me = app.session_me(&session).await;
    let session_queries = queries(&session_me);
    assert_refused(session_me, StatusCode::UNAUTHORIZED, "not_logged_in").await;

    // Scheme 1: the device token is found in the database and re-attached (C5).
    let device_me = app.device_me(&device).await;
    assert_eq!(device_me.status(), StatusCode::OK);
    assert_eq!(device_me.headers()["x-session-renewed"], "1");
    let device_queries = queries(&device_me);

    // Access token: no server session was ever involved.
    let jwt_me = app.jwt_me(&access).await;
    assert_eq!(jwt_me.status(), StatusCode::OK);
    let jwt_queries = queries(&jwt_me);

    // The counts are real: a lookup that found nothing, a re-attach that reads and writes, and
    // nothing at all for the token (its keys and the ended logins are in memory).
    assert_eq!(session_queries, 1, "one session lookup, nothing found");
    assert!(device_queries > session_queries, "re-attach: {device_queries} statements");
    assert_eq!(jwt_queries, 0, "an access token costs no statement");
    assert_eq!(queries(&app.get("/api/demo/clock").await), 0, "the clock needs no database");
    app.stop().await;
}

backend_test!(reset_wipes_demo_data_and_the_clock);
async fn reset_wipes_demo_data_and_the_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.register("bob", "correct horse battery").await.status(), StatusCode::CREATED);
    let bob = TestUser::new("bob", "correct horse battery");
    let bobs_access = app.password_grant(&bob).await["access_token"].as_str().unwrap().to_owned();
    let alice = TestUser::alice();
    let browser = app.session_login(&alice).await;
    let alices_access =
        app.password_grant(&alice).await["access_token"].as_str().unwrap().to_owned();
    // Changed from the signed-in browser, whose session the change keeps for reset to remove.
    let changed = browser
        .apply(Client::new().post(app.url("/api/accounts/password")))
        .json(&json!({"username": "alice", "current_password": "wonderland-demo", "new_password": "something else entirely"}))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success(), "{}", changed.status());
    app.advance_clock(3600).await;
    let switched = choose_policy(&app, "keycloak").await;
    assert_eq!(switched.status(), StatusCode::OK);

    let response = app.client.post(app.url("/api/demo/reset")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["clock"]["offset_seconds"], 0);
    assert_eq!(done["token_policy"], "article");
    assert_eq!(done["removed"]["users"], 1, "{done}");
    assert!(done["removed"]["sessions"].as_u64().unwrap() >= 1, "{done}");
    assert_eq!(done["removed"]["signing_keys"], 1, "{done}");
    // No access token outlives the reset: not the demo account's, whose login is gone, nor that of
    // bob, who is gone too (a form token for him would be a row pointing at no user).
    for access in [&alices_access, &bobs_access] {
        assert_refused(app.jwt_me(access).await, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let form = Credential::Bearer(access.clone());
        let response = app.get_as("/api/orders/form-token", &form).await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    }

    let (_, state) = inspect(&app).await;
    for table in
        ["sessions", "devices", "refresh_families", "form_tokens", "idempotency_keys", "orders"]
    {
        assert_eq!(state[table], json!([]), "{table} after reset");
    }
    // A new login's token is signed with the new key.
    let fresh = app.password_grant(&alice).await;
    assert_eq!(app.jwt_me(fresh["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // The demo account is back to its documented password, and bob is gone.
    assert_eq!(app.try_session_login(&alice).await.status(), StatusCode::OK);
    assert_eq!(app.register("bob", "correct horse battery").await.status(), StatusCode::CREATED);
    let policy: Value = app.get("/api/demo/policy").await.json().await.unwrap();
    assert_eq!(policy["current"]["name"], "article");
    app.stop().await;
}

backend_test!(policy_presets_switch_the_lifetimes_of_new_tokens);
async fn policy_presets_switch_the_lifetimes_of_new_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let policy: Value = app.get("/api/demo/policy").await.json().await.unwrap();
    assert_eq!(policy["current"]["name"], "article");
    let names: Vec<&str> =
        policy["presets"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["article", "recommended", "keycloak", "auth0", "cognito"]);
    assert!(policy["presets"][2]["source"].as_str().unwrap().contains("Keycloak"));

    // Issued under the article's preset: a family that ends in 60 days.
    let article_tokens = app.password_grant(&TestUser::alice()).await;
    assert_eq!(article_tokens["expires_in"], 30 * 86_400);

    let switched = choose_policy(&app, "keycloak").await;
    assert_eq!(switched.status(), StatusCode::OK);
    let switched: Value = switched.json().await.unwrap();
    assert_eq!(switched["current"]["access_lifetime_seconds"], 300);

    let keycloak_tokens = app.password_grant(&TestUser::alice()).await;
    assert_eq!(keycloak_tokens["expires_in"], 300);
    assert_eq!(keycloak_tokens["refresh_expires_in"], 1800);

    // A family keeps the end it was given at login: refreshing the article family under
    // keycloak gives keycloak's idle limit, and refreshing the keycloak family under the
    // article's preset cannot outlive its 10 hours.
    let refreshed: Value =
        app.refresh(article_tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(refreshed["expires_in"], 300);
    assert_eq!(refreshed["refresh_expires_in"], 1800);
    let back = choose_policy(&app, "article").await;
    assert_eq!(back.status(), StatusCode::OK);
    let refreshed: Value =
        app.refresh(keycloak_tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    let left = refreshed["refresh_expires_in"].as_i64().unwrap();
    assert_eq!(left, 10 * 3600, "{left}");
    // The article's month-long access token is cut to the family's end: no token outlives
    // the login it came from.
    assert_eq!(refreshed["expires_in"], refreshed["refresh_expires_in"]);

    let unknown = choose_policy(&app, "forever").await;
    assert_refused(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    app.stop().await;
}

backend_test!(the_lab_controls_do_not_exist_in_production);
async fn the_lab_controls_do_not_exist_in_production(backend: Backend) {
    let app = spawn_app_with(backend, production).await;
    let calls = [
        app.get("/api/demo/inspector").await,
        app.get("/api/demo/policy").await,
        choose_policy(&app, "article").await,
        app.client.post(app.url("/api/demo/reset")).send().await.unwrap(),
        app.client.post(app.url("/api/demo/sessions/expire")).send().await.unwrap(),
    ];
    for response in calls {
        assert_refused(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    app.stop().await;
}

backend_test!(the_inspector_counts_cross_site_refusals_and_refuses_a_bad_query);
async fn the_inspector_counts_cross_site_refusals_and_refuses_a_bad_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, state) = inspect(&app).await;
    assert_eq!(state["cross_site_refusals"], 0);
    for _ in 0..2 {
        let refused = app
            .client
            .post(app.url("/api/orders"))
            .header("origin", "https://evil.example")
            .form(&[("item", "prize"), ("quantity", "100")])
            .send()
            .await
            .unwrap();
        assert_refused(refused, StatusCode::FORBIDDEN, "cross_site_request").await;
    }
    let (_, state) = inspect(&app).await;
    assert_eq!(state["cross_site_refusals"], 2, "counted on the server, for the lab to read");

    let reset = app.client.post(app.url("/api/demo/reset")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let (_, state) = inspect(&app).await;
    assert_eq!(state["cross_site_refusals"], 0);

    let twice = app.get("/api/demo/inspector?username=alice&username=bob").await;
    assert_refused(twice, StatusCode::BAD_REQUEST, "invalid_query").await;
    app.stop().await;
}
