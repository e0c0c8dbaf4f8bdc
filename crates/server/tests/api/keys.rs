//! Production keys from `--keys-dir`: refused without them, the newest signs, every key in the
//! directory verifies and is published, and a removed file ends its tokens at the next start.

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use reqwest::StatusCode;
use serde_json::Value;
use tokenlab_server::app::StartError;
use tokenlab_server::config::{ConfigError, Profile, TrustedProxies};
use tokenlab_server::keys::files::{KeyFileError, REFRESH_KEY_FILE};
use tokenlab_server::{Application, Settings};

use crate::helpers::{Backend, TestApp, assert_refused, production, spawn_app_with, test_clock};

fn production_settings() -> Settings {
    let mut settings = Settings::for_tests("sqlite::memory:");
    production(&mut settings);
    settings
}

#[tokio::test]
async fn production_refuses_to_start_without_a_usable_keys_directory() {
    let refused = Application::build(production_settings(), test_clock()).await.err().unwrap();
    assert!(
        matches!(refused, StartError::Config(ConfigError::ProductionWithoutKeysDir)),
        "{refused}"
    );
    assert!(refused.to_string().contains("--keys-dir"), "names the flag: {refused}");

    let empty = tempfile::tempdir().unwrap();
    let mut settings = production_settings();
    settings.keys_dir = Some(empty.path().to_owned());
    let refused = Application::build(settings, test_clock()).await.err().unwrap();
    assert!(
        matches!(refused, StartError::KeyFiles(KeyFileError::NoSigningKey { .. })),
        "{refused}"
    );
    assert!(refused.to_string().contains("tokenlab keys generate"), "says how: {refused}");

    // The demo keeps its keys where the lab can rotate them; a keys directory there is a mistake.
    let keys = crate::helpers::test_keys();
    let mut demo = Settings::for_tests("sqlite::memory:");
    demo.profile = Profile::Demo;
    demo.keys_dir = Some(keys.path().to_owned());
    let refused = Application::build(demo, test_clock()).await.err().unwrap();
    assert!(matches!(refused, StartError::Config(ConfigError::KeysDirInDemo)), "{refused}");
}

#[tokio::test]
async fn keys_generate_writes_a_directory_production_starts_from() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let run = |dir: &std::path::Path| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokenlab"))
            .args(["keys", "generate", "--dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let first = run(&keys_dir);
    assert!(first.contains("signing key") && first.contains("refresh-derivation key"), "{first}");
    let second = run(&keys_dir);
    assert!(!second.contains("refresh-derivation key"), "kept, not replaced: {second}");
    let pem_files = std::fs::read_dir(&keys_dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension().is_some_and(|e| e == "pem"))
        .count();
    assert_eq!(pem_files, 2);
    assert!(keys_dir.join(REFRESH_KEY_FILE).exists());

    let mut settings = production_settings();
    settings.keys_dir = Some(keys_dir);
    settings.trusted_proxies = Some(TrustedProxies::default());
    let started = Application::build(settings, test_clock()).await;
    assert!(started.is_ok(), "{:?}", started.err());
}

/// The keys `/.well-known/jwks.json` publishes, by `kid`.
async fn published(app: &TestApp) -> JwkSet {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// What any resource server does with our JWKS: pick the key the token's `kid` names, check the
/// signature. (Expiry is the server's business on its own clock; the test clock is in the past.)
fn verifies_against(jwks: &JwkSet, token: &str) -> bool {
    let Some(jwk) = jwks.find(&kid_of(token)) else { return false };
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_audience(&["tokenlab-api"]);
    validation.set_issuer(&["https://lab.example"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
}

backend_test!(keys_from_the_directory_sign_rotate_and_retire_by_file);
async fn keys_from_the_directory_sign_rotate_and_retire_by_file(backend: Backend) {
    let keys = crate::helpers::test_keys();
    let keys_dir = keys.path().to_owned();
    let with_keys = |settings: &mut Settings| {
        production(settings);
        settings.keys_dir = Some(keys_dir.clone());
    };
    let first = spawn_app_with(backend, with_keys).await;
    let user = first.register_user().await;
    let first_login = first.password_grant(&user).await;
    let old_token = first_login["access_token"].as_str().unwrap().to_owned();
    let jwks = published(&first).await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(verifies_against(&jwks, &old_token), "{backend:?}: signed by the published key");
    assert_eq!(first.jwt_me(&old_token).await.status(), StatusCode::OK);
    let in_database = first.count("SELECT COUNT(*) AS n FROM server_keys").await;
    assert_eq!(in_database, 0, "{backend:?}: production keeps no key in its database");

    // Rotate: a new key in the directory, then a restart (another instance started from it).
    let old_kid = kid_of(&old_token);
    let old_file = std::fs::read_dir(&keys_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "pem"))
        .unwrap();
    let later = crate::helpers::START + time::Duration::days(30);
    tokenlab_server::keys::files::generate(&keys_dir, later, &tokenlab_server::secrets::OsSecrets)
        .unwrap();
    let rotated = first.second_instance_with(with_keys).await;
    let new_token =
        rotated.password_grant(&user).await["access_token"].as_str().unwrap().to_owned();
    assert_ne!(kid_of(&new_token), old_kid, "{backend:?}: the newest key signs");
    let jwks = published(&rotated).await;
    assert_eq!(jwks.keys.len(), 2, "{backend:?}: both keys are published");
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(kid_of(&new_token).as_str()));
    assert!(verifies_against(&jwks, &old_token) && verifies_against(&jwks, &new_token));
    assert_eq!(rotated.jwt_me(&old_token).await.status(), StatusCode::OK, "still verifies");
    assert_eq!(rotated.jwt_me(&new_token).await.status(), StatusCode::OK);

    // Retire: the old key's file is removed; from the next start on, its tokens are refused.
    std::fs::remove_file(old_file).unwrap();
    let retired = first.second_instance_with(with_keys).await;
    let jwks = published(&retired).await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(!verifies_against(&jwks, &old_token), "{backend:?}: no longer published");
    assert_refused(retired.jwt_me(&old_token).await, StatusCode::UNAUTHORIZED, "token_invalid")
        .await;
    assert_eq!(retired.jwt_me(&new_token).await.status(), StatusCode::OK);
    // The refresh-derivation key stayed, so the first login's refresh token still rotates, and
    // its new access token is signed by the key in force.
    let refreshed = retired.refresh(first_login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "{backend:?}");
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(kid_of(refreshed["access_token"].as_str().unwrap()), kid_of(&new_token));
    retired.stop().await;
    rotated.stop().await;
    first.stop().await;
}
