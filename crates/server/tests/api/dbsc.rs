//! Device Bound Session Credentials for the session-id scheme: the browser's side played by a test
//! client with an ES256 key, as Chromium plays it (the registration JWT carries the key and the
//! login's challenge; a refresh is challenged, then signed). The browser itself does the same in
//! `e2e/dbsc-tests/`.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::dpop_client::ProofKey;
use crate::helpers::{
    Backend, TestApp, TestUser, assert_refused, set_cookie, set_cookie_line, spawn_app,
};

const REGISTRATION: &str = "/api/session/dbsc/registration";
const REFRESH: &str = "/api/session/dbsc/refresh";

/// `path` and `challenge` of a `Secure-Session-Registration` value.
fn registration_parameters(response: &Response) -> (String, String) {
    let value = response.headers()["secure-session-registration"].to_str().unwrap().to_owned();
    assert!(value.starts_with("(ES256);"), "{value}");
    let parameter = |name: &str| {
        let start = value.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        value[start..].split('"').next().unwrap().to_owned()
    };
    (parameter("path"), parameter("challenge"))
}

/// What the browser signs: the challenge as `jti`, with the key in the header at registration.
fn signed(key: &ProofKey, challenge: &str, with_key: bool) -> String {
    let mut header =
        json!({"alg": if key.jwk["kty"] == "EC" { "ES256" } else { "EdDSA" }, "typ": "dbsc+jwt"});
    if with_key {
        header["jwk"] = key.jwk.clone();
    }
    key.sign(&header, &json!({"jti": challenge}))
}

/// A browser holding the session cookie, the bound cookie once it has one, and a key.
struct Browser<'a> {
    app: &'a TestApp,
    session: String,
    bound: Option<String>,
}

impl<'a> Browser<'a> {
    /// Logs in; returns the browser and the registration challenge the answer carried.
    async fn log_in(app: &'a TestApp) -> (Self, String) {
        let response = app.try_session_login(&TestUser::alice()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (path, challenge) = registration_parameters(&response);
        assert_eq!(path, REGISTRATION);
        let session = set_cookie(&response, "tl_session").unwrap();
        (Self { app, session, bound: None }, challenge)
    }

    fn cookies(&self) -> String {
        match &self.bound {
            Some(bound) => format!("tl_session={}; tl_bound={bound}", self.session),
            None => format!("tl_session={}", self.session),
        }
    }

    async fn post(&self, on: &TestApp, path: &str, headers: &[(&str, String)]) -> Response {
        let mut request = Client::new().post(on.url(path)).header("cookie", self.cookies());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    async fn me(&self) -> Response {
        Client::new()
            .get(self.app.url("/api/session/me"))
            .header("cookie", self.cookies())
            .send()
            .await
            .unwrap()
    }

    /// Keeps the bound cookie an answer set.
    fn keep(&mut self, response: &Response) {
        self.bound = Some(set_cookie(response, "tl_bound").expect("a bound cookie"));
    }

    /// Registers `key` at `on` with the login's `challenge`, keeps the bound cookie, and returns
    /// the header that names the bound session in a refresh.
    async fn register(
        &mut self,
        on: &TestApp,
        key: &ProofKey,
        challenge: &str,
    ) -> (&'static str, String) {
        let registered = self
            .post(on, REGISTRATION, &[("secure-session-response", signed(key, challenge, true))])
            .await;
        self.keep(&registered);
        let instructions: Value = registered.json().await.unwrap();
        ("sec-secure-session-id", instructions["session_identifier"].as_str().unwrap().to_owned())
    }
}

backend_test!(a_session_bound_by_the_browser_needs_the_short_lived_cookie_only_its_key_renews);
async fn a_session_bound_by_the_browser_needs_the_short_lived_cookie_only_its_key_renews(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let key = ProofKey::p256();
    let (mut browser, challenge) = Browser::log_in(&app).await;
    // Until the browser registers, the session works as the article's.
    assert_eq!(browser.me().await.status(), StatusCode::OK);

    let registration = browser
        .post(&app, REGISTRATION, &[("secure-session-response", signed(&key, &challenge, true))])
        .await;
    assert_eq!(registration.status(), StatusCode::OK);
    let line = set_cookie_line(&registration, "tl_bound").unwrap();
    assert!(line.contains("Max-Age=600") && line.contains("HttpOnly"), "{line}");
    browser.keep(&registration);
    let instructions: Value = registration.json().await.unwrap();
    assert_eq!(instructions["refresh_url"], REFRESH);
    assert_eq!(instructions["scope"]["include_site"], false);
    assert_eq!(instructions["credentials"][0]["name"], "tl_bound");
    let identifier = instructions["session_identifier"].as_str().unwrap().to_owned();

    let me = browser.me().await;
    assert_eq!(me.status(), StatusCode::OK);
    let view: Value = me.json().await.unwrap();
    assert_eq!(view["session"]["bound"]["key_thumbprint"], key.jkt.as_str());

    // The session cookie alone — what a thief copies from disk or a log — is not enough.
    let copied = Browser { app: &app, session: browser.session.clone(), bound: None };
    let response = copied.me().await;
    assert!(set_cookie_line(&response, "tl_bound").is_some_and(|l| l.contains("Max-Age=0")));
    assert_refused(response, StatusCode::UNAUTHORIZED, "dbsc_refresh_required").await;

    // A refresh is challenged, then answered with the challenge signed by the key.
    let named = ("sec-secure-session-id", identifier.clone());
    let challenged = browser.post(&app, REFRESH, std::slice::from_ref(&named)).await;
    let header = challenged.headers()["secure-session-challenge"].to_str().unwrap().to_owned();
    assert_refused(challenged, StatusCode::FORBIDDEN, "dbsc_challenge").await;
    let refresh_challenge = header.split('"').nth(1).unwrap().to_owned();
    assert_eq!(header, format!("\"{refresh_challenge}\";id=\"{identifier}\""));
    let old_bound = browser.bound.clone();
    let answer = ("secure-session-response", signed(&key, &refresh_challenge, false));
    let refreshed = browser.post(&app, REFRESH, &[named.clone(), answer.clone()]).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    browser.keep(&refreshed);
    assert_ne!(browser.bound, old_bound);
    assert_eq!(browser.me().await.status(), StatusCode::OK);
    // The answer, captured on the way, is spent: it mints no second cookie, here or elsewhere.
    let replayed = browser.post(&app, REFRESH, &[named.clone(), answer]).await;
    assert_refused(replayed, StatusCode::UNAUTHORIZED, "dbsc_proof_invalid").await;
    // Each challenge is new.
    let again = browser.post(&app, REFRESH, std::slice::from_ref(&named)).await;
    let next = again.headers()["secure-session-challenge"].to_str().unwrap().to_owned();
    assert_ne!(next.split('"').nth(1), Some(refresh_challenge.as_str()));

    // Ten minutes on, a copy of both cookies is spent, and without the key it cannot be renewed.
    let thief =
        Browser { app: &app, session: browser.session.clone(), bound: browser.bound.clone() };
    assert_eq!(thief.me().await.status(), StatusCode::OK, "a fresh copy works, for now");
    app.clock.advance(time::Duration::minutes(11));
    assert_refused(thief.me().await, StatusCode::UNAUTHORIZED, "dbsc_refresh_required").await;
    let challenged = thief.post(&app, REFRESH, std::slice::from_ref(&named)).await;
    let header = challenged.headers()["secure-session-challenge"].to_str().unwrap().to_owned();
    let fresh_challenge = header.split('"').nth(1).unwrap().to_owned();
    let thiefs_key = ProofKey::ed25519(5);
    let wrong: Vec<(&str, String)> = vec![
        ("another key", signed(&thiefs_key, &fresh_challenge, false)),
        ("a made-up challenge", signed(&key, "made-up", false)),
        ("the registration's challenge", signed(&key, &challenge, false)),
        ("not a JWT", "nothing".to_owned()),
    ];
    for (what, answer) in wrong {
        let response =
            thief.post(&app, REFRESH, &[named.clone(), ("secure-session-response", answer)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_refused(response, StatusCode::UNAUTHORIZED, "dbsc_proof_invalid").await;
    }
    // The browser, with the key, renews it.
    let refreshed = browser
        .post(
            &app,
            REFRESH,
            &[named, ("secure-session-response", signed(&key, &fresh_challenge, false))],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    browser.keep(&refreshed);
    assert_eq!(browser.me().await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_registration_must_answer_its_own_sessions_challenge_once);
async fn a_registration_must_answer_its_own_sessions_challenge_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ProofKey::p256();
    let (first, first_challenge) = Browser::log_in(&app).await;
    let (second, second_challenge) = Browser::log_in(&app).await;
    let register = |browser: &Browser<'_>, answer: String| {
        let cookies = browser.cookies();
        let url = app.url(REGISTRATION);
        async move {
            Client::new()
                .post(url)
                .header("cookie", cookies)
                .header("secure-session-response", answer)
                .send()
                .await
                .unwrap()
        }
    };
    let mut ed_header = json!({"alg": "EdDSA", "typ": "dbsc+jwt"});
    let ed = ProofKey::ed25519(3);
    ed_header["jwk"] = ed.jwk.clone();
    let cases: Vec<(&str, String)> = vec![
        ("another session's challenge", signed(&key, &second_challenge, true)),
        ("no key in the header", signed(&key, &first_challenge, false)),
        (
            "an Ed25519 key (only ES256 is offered)",
            ed.sign(&ed_header, &json!({"jti": first_challenge})),
        ),
    ];
    for (what, answer) in cases {
        let response = register(&first, answer).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_refused(response, StatusCode::UNAUTHORIZED, "dbsc_proof_invalid").await;
    }
    let response = Client::new().post(app.url(REGISTRATION)).send().await.unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "not_logged_in").await;
    assert_eq!(
        register(&first, signed(&key, &first_challenge, true)).await.status(),
        StatusCode::OK
    );
    // Bound once: another key cannot take the session over.
    let again = register(&first, signed(&ProofKey::ed25519(4), &first_challenge, true)).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    // The other session is untouched.
    assert_eq!(second.me().await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_session_bound_on_one_instance_refreshes_on_the_other);
async fn a_session_bound_on_one_instance_refreshes_on_the_other(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = first.second_instance().await;
    let key = ProofKey::p256();
    let (mut browser, challenge) = Browser::log_in(&first).await;
    let named = browser.register(&first, &key, &challenge).await;
    // Challenged by the first instance, answered at the second.
    let challenged = browser.post(&first, REFRESH, std::slice::from_ref(&named)).await;
    let header = challenged.headers()["secure-session-challenge"].to_str().unwrap().to_owned();
    let refresh_challenge = header.split('"').nth(1).unwrap().to_owned();
    let refreshed = browser
        .post(
            &second,
            REFRESH,
            &[named, ("secure-session-response", signed(&key, &refresh_challenge, false))],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    browser.keep(&refreshed);
    assert_eq!(browser.me().await.status(), StatusCode::OK);
    second.stop().await;
    first.stop().await;
}

backend_test!(an_expired_session_is_not_renewed);
async fn an_expired_session_is_not_renewed(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = ProofKey::p256();
    let (mut browser, challenge) = Browser::log_in(&app).await;
    let named = browser.register(&app, &key, &challenge).await;
    // Past the session's idle timeout, the key cannot keep it alive.
    app.clock.advance(time::Duration::minutes(31));
    let response = browser.post(&app, REFRESH, std::slice::from_ref(&named)).await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "session_expired").await;
    app.stop().await;
}
