//! Access and refresh tokens bound to a key (DPoP, RFC 9449): what a proof binds, and each way a
//! copied token, a copied proof or a proof by another key is refused.

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokenlab_core::Clock as _;
use tokenlab_server::config::DpopNonces;

use crate::dpop_client::{ProofClaims, ProofKey, payload};
use crate::helpers::{
    Backend, TestApp, TestUser, assert_refused, set_cookie, spawn_app, spawn_app_with,
};

const TOKEN: &str = "/api/oauth/token";
const ME: &str = "/api/jwt/me";
const DEVICE_LOGIN: &str = "/api/device/login";
const DEVICE_ME: &str = "/api/device/me";

/// A client holding a proof key, as a browser page with a WebCrypto key would: every request gets
/// a fresh proof with the latest nonce the server handed out.
pub struct DpopClient<'a> {
    app: &'a TestApp,
    pub key: ProofKey,
    pub nonce: Option<String>,
}

impl<'a> DpopClient<'a> {
    pub fn new(app: &'a TestApp, key: ProofKey) -> Self {
        Self { app, key, nonce: None }
    }

    fn now(&self) -> i64 {
        self.app.clock.now().unix_timestamp()
    }

    /// A proof for `method path` now, with this client's nonce and, given one, the token's hash.
    fn proof(&self, method: &str, path: &str, access_token: Option<&str>) -> String {
        let url = self.app.url(path);
        self.key.proof(&ProofClaims {
            method,
            url: &url,
            iat: self.now(),
            access_token,
            nonce: self.nonce.as_deref(),
            jti: None,
        })
    }

    /// Keeps the nonce an answer hands out, as RFC 9449 §8 asks a client to.
    fn remember_nonce(&mut self, response: &Response) {
        if let Some(nonce) = response.headers().get("dpop-nonce") {
            self.nonce = Some(nonce.to_str().unwrap().to_owned());
        }
    }

    async fn try_token(&mut self, form: &[(&str, &str)]) -> Response {
        let proof = self.proof("POST", TOKEN, None);
        let response = Client::new()
            .post(self.app.url(TOKEN))
            .header("dpop", proof)
            .form(form)
            .send()
            .await
            .unwrap();
        self.remember_nonce(&response);
        response
    }

    /// A token request, retried once with the server's nonce when it asks for one (a refusal
    /// that carries `DPoP-Nonce`).
    async fn token(&mut self, form: &[(&str, &str)]) -> Response {
        let response = self.try_token(form).await;
        if response.status() == StatusCode::BAD_REQUEST
            && response.headers().contains_key("dpop-nonce")
        {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "use_dpop_nonce", "{body}");
            return self.try_token(form).await;
        }
        response
    }

    pub async fn login(&mut self, user: &TestUser) -> Value {
        let form = [
            ("grant_type", "password"),
            ("username", &user.username),
            ("password", &user.password),
        ];
        let response = self.token(&form).await;
        assert_eq!(response.status(), StatusCode::OK, "DPoP login of {}", user.username);
        response.json().await.unwrap()
    }

    async fn refresh(&mut self, refresh_token: &str) -> Response {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// `GET path` with `Authorization: DPoP` and a proof naming this request and the token.
    pub fn get_request(&self, path: &str, access_token: &str) -> (RequestBuilder, String) {
        let proof = self.proof("GET", path, Some(access_token));
        let request = Client::new()
            .get(self.app.url(path))
            .header("authorization", format!("DPoP {access_token}"))
            .header("dpop", &proof);
        (request, proof)
    }

    /// `POST /api/device/login` in mode `bound`, with a proof of it (retried once with the
    /// server's nonce when it asks for one); the response as it came.
    pub async fn device_login(&mut self, user: &TestUser, device_id: &str) -> Response {
        let body = json!({
            "username": user.username,
            "password": user.password,
            "device_id": device_id,
            "mode": "bound",
        });
        for _ in 0..2 {
            let response = Client::new()
                .post(self.app.url(DEVICE_LOGIN))
                .header("dpop", self.proof("POST", DEVICE_LOGIN, None))
                .json(&body)
                .send()
                .await
                .unwrap();
            let asked_for_nonce = response.status() == StatusCode::UNAUTHORIZED
                && response.headers().contains_key("dpop-nonce");
            self.remember_nonce(&response);
            if !asked_for_nonce {
                return response;
            }
        }
        panic!("the server asked for a nonce twice");
    }

    /// A bound device's call: `X-Device-Id`, a fresh proof, and the `tl_device` cookie if given.
    fn device_request(&self, path: &str, device_id: &str, cookie: Option<&str>) -> RequestBuilder {
        let mut request = Client::new()
            .get(self.app.url(path))
            .header("x-device-id", device_id)
            .header("dpop", self.proof("GET", path, None));
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("tl_device={cookie}"));
        }
        request
    }

    async fn device_get(&mut self, path: &str, device_id: &str, cookie: Option<&str>) -> Response {
        let response = self.device_request(path, device_id, cookie).send().await.unwrap();
        self.remember_nonce(&response);
        response
    }

    async fn get(&mut self, path: &str, access_token: &str) -> Response {
        let response = self.get_request(path, access_token).0.send().await.unwrap();
        self.remember_nonce(&response);
        response
    }
}

fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

fn queries(response: &Response) -> u32 {
    response.headers()["x-tokenlab-db-queries"].to_str().unwrap().parse().unwrap()
}

/// A refusal of a resource with RFC 9449 §7.1's challenge.
async fn resource_refused(response: Response, reason: &str, error: &str) -> Value {
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("DPoP algs=\"ES256 EdDSA\""), "{challenge}");
    assert!(challenge.contains(&format!("error=\"{error}\"")), "{challenge} for {reason}");
    assert_refused(response, StatusCode::UNAUTHORIZED, reason).await
}

/// RFC 6749 §5.2's shape, with RFC 9449's `error` codes.
async fn grant_refused(response: Response, reason: &str, error: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "status for {reason}");
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["reason"].as_str(), body["error"].as_str()), (Some(reason), Some(error)));
}

backend_test!(a_proof_at_login_binds_both_tokens_to_its_key);
async fn a_proof_at_login_binds_both_tokens_to_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    for key in [ProofKey::p256(), ProofKey::ed25519(1)] {
        let mut client = DpopClient::new(&app, key);
        let form =
            [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];
        // The first proof has no nonce: the server asks for its own (RFC 9449 §8) before it
        // checks a password.
        let challenge = client.try_token(&form).await;
        assert!(challenge.headers().contains_key("dpop-nonce"));
        grant_refused(challenge, "use_dpop_nonce", "use_dpop_nonce").await;

        let response = client.try_token(&form).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("dpop-nonce"), "the nonce for what follows");
        let tokens: Value = response.json().await.unwrap();
        assert_eq!(tokens["token_type"], "DPoP");
        assert_eq!(payload(access_token(&tokens))["cnf"]["jkt"], client.key.jkt.as_str());

        // The bound token with a fresh proof: accepted, with one statement (the replay store's).
        let response = client.get(ME, access_token(&tokens)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(queries(&response), 1);
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["user"]["username"], "alice");
        assert_eq!(me["token"]["dpop_jkt"], client.key.jkt.as_str());

        // Every endpoint that takes an access token takes a bound one (its own path in the proof).
        let response = client.get("/api/sessions", access_token(&tokens)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // A bearer token still needs no statement at all.
    let bearer = app.password_grant(&TestUser::alice()).await;
    assert_eq!(bearer["token_type"], "Bearer");
    assert_eq!(payload(access_token(&bearer)).get("cnf"), None);
    let response = app.jwt_me(access_token(&bearer)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(queries(&response), 0);
    app.stop().await;
}

backend_test!(a_bound_token_is_worthless_without_a_fresh_proof_by_its_key);
async fn a_bound_token_is_worthless_without_a_fresh_proof_by_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = DpopClient::new(&app, ProofKey::ed25519(1));
    let tokens = client.login(&TestUser::alice()).await;
    let token = access_token(&tokens);
    let now = client.now();
    let nonce = client.nonce.clone();
    let me = app.url(ME);
    let claims = ProofClaims {
        method: "GET",
        url: &me,
        iat: now,
        access_token: Some(token),
        nonce: nonce.as_deref(),
        jti: None,
    };
    let send = |authorization: String, proof: Option<String>| {
        let mut request = Client::new().get(app.url(ME)).header("authorization", authorization);
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let dpop = format!("DPoP {token}");

    // The token copied alone, as the article's bearer tokens are used.
    let response = send(format!("Bearer {token}"), None).await.unwrap();
    resource_refused(response, "token_bound", "invalid_token").await;
    let proof = client.key.proof(&claims);
    let response = send(format!("Bearer {token}"), Some(proof)).await.unwrap();
    resource_refused(response, "token_bound", "invalid_token").await;
    let response = send(dpop.clone(), None).await.unwrap();
    resource_refused(response, "dpop_proof_invalid", "invalid_dpop_proof").await;

    // Proofs that are not this request's, or not by this key.
    let other_url = app.url("/api/session/me");
    let other_token = "another.access.token";
    let wrong: Vec<(&str, String)> = vec![
        ("another key", ProofKey::ed25519(2).proof(&claims)),
        ("no ath", client.key.proof(&ProofClaims { access_token: None, ..claims.clone() })),
        (
            "another token's ath",
            client.key.proof(&ProofClaims { access_token: Some(other_token), ..claims.clone() }),
        ),
        ("another method", client.key.proof(&ProofClaims { method: "POST", ..claims.clone() })),
        ("another URL", client.key.proof(&ProofClaims { url: &other_url, ..claims.clone() })),
        ("61 s old", client.key.proof(&ProofClaims { iat: now - 61, ..claims.clone() })),
        ("6 s ahead", client.key.proof(&ProofClaims { iat: now + 6, ..claims.clone() })),
        ("not a JWT", "dpop".to_owned()),
    ];
    for (what, proof) in wrong {
        let response = send(dpop.clone(), Some(proof)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        resource_refused(response, "dpop_proof_invalid", "invalid_dpop_proof").await;
    }

    // The right proof counts once: a captured copy replayed is refused, even a moment later.
    let (request, proof) = client.get_request(ME, token);
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    let response = send(dpop.clone(), Some(proof)).await.unwrap();
    resource_refused(response, "dpop_proof_replayed", "invalid_dpop_proof").await;

    // Two Authorization headers: which would count? Neither.
    let (request, _) = client.get_request(ME, token);
    let doubled = request.header("authorization", format!("Bearer {token}")).send().await.unwrap();
    assert_refused(doubled, StatusCode::UNAUTHORIZED, "token_invalid").await;

    // A bearer token presented as bound is refused too: the scheme names what the token is.
    let bearer = app.password_grant(&TestUser::alice()).await;
    let proof =
        client.key.proof(&ProofClaims { access_token: Some(access_token(&bearer)), ..claims });
    let response = send(format!("DPoP {}", access_token(&bearer)), Some(proof)).await.unwrap();
    resource_refused(response, "token_invalid", "invalid_token").await;
    app.stop().await;
}

backend_test!(a_stale_nonce_is_answered_with_a_new_one_and_the_retry_passes);
async fn a_stale_nonce_is_answered_with_a_new_one_and_the_retry_passes(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = DpopClient::new(&app, ProofKey::p256());
    let tokens = client.login(&TestUser::alice()).await;
    let first_nonce = client.nonce.clone().unwrap();

    // A nonce lasts its five-minute period and the next: still good after five minutes.
    app.clock.advance(time::Duration::minutes(5));
    let response = client.get(ME, access_token(&tokens)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Ten minutes on, it is stale: the answer carries the nonce to use, and the retry passes.
    app.clock.advance(time::Duration::minutes(5));
    let response = client.get(ME, access_token(&tokens)).await;
    let fresh_nonce = client.nonce.clone().unwrap();
    assert_ne!(fresh_nonce, first_nonce);
    resource_refused(response, "use_dpop_nonce", "use_dpop_nonce").await;
    let response = client.get(ME, access_token(&tokens)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A proof made for a nonce of the future cannot exist: a made-up one is refused the same way.
    client.nonce = Some("made-up".into());
    let response = client.get(ME, access_token(&tokens)).await;
    resource_refused(response, "use_dpop_nonce", "use_dpop_nonce").await;
    app.stop().await;
}

backend_test!(a_bound_refresh_token_is_exchanged_only_with_a_proof_by_its_key);
async fn a_bound_refresh_token_is_exchanged_only_with_a_proof_by_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = DpopClient::new(&app, ProofKey::ed25519(1));
    let tokens = client.login(&TestUser::alice()).await;
    let refresh = refresh_token(&tokens);

    // Copied without the key: refused, and the token is not spent.
    let response = app.refresh(refresh).await;
    grant_refused(response, "dpop_proof_invalid", "invalid_dpop_proof").await;
    let mut thief = DpopClient::new(&app, ProofKey::ed25519(2));
    let response = thief.refresh(refresh).await;
    grant_refused(response, "dpop_proof_invalid", "invalid_dpop_proof").await;

    let response = client.refresh(refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    assert_eq!(rotated["token_type"], "DPoP");
    assert_eq!(payload(access_token(&rotated))["cnf"]["jkt"], client.key.jkt.as_str());
    assert_eq!(client.get(ME, access_token(&rotated)).await.status(), StatusCode::OK);

    // A bearer family is not turned into a bound one halfway.
    let bearer = app.password_grant(&TestUser::alice()).await;
    let response = client.refresh(refresh_token(&bearer)).await;
    grant_refused(response, "dpop_proof_invalid", "invalid_dpop_proof").await;
    assert_eq!(app.refresh(refresh_token(&bearer)).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_proof_used_on_one_instance_is_refused_on_the_other);
async fn a_proof_used_on_one_instance_is_refused_on_the_other(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = first.second_instance().await;
    let mut client = DpopClient::new(&first, ProofKey::p256());
    let tokens = client.login(&TestUser::alice()).await;
    let token = access_token(&tokens);

    // The second instance accepts the first one's nonce: nonces are derived, not stored.
    let (request, proof) = client.get_request(ME, token);
    let on_second = Client::new()
        .get(second.url(ME))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof);
    assert_eq!(on_second.send().await.unwrap().status(), StatusCode::OK);
    // The same proof, then, on the first: seen.
    let response = request.send().await.unwrap();
    resource_refused(response, "dpop_proof_replayed", "invalid_dpop_proof").await;

    // Racing: the same proof at both instances at once is accepted exactly once.
    let (request, proof) = client.get_request(ME, token);
    let on_second = Client::new()
        .get(second.url(ME))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof);
    let (a, b) = tokio::join!(request.send(), on_second.send());
    let mut statuses = [a.unwrap().status(), b.unwrap().status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    second.stop().await;
    first.stop().await;
}

backend_test!(without_nonces_a_first_proof_is_enough);
async fn without_nonces_a_first_proof_is_enough(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.dpop_nonces = DpopNonces::Off).await;
    let mut client = DpopClient::new(&app, ProofKey::ed25519(3));
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];
    let response = client.try_token(&form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("dpop-nonce"));
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(client.get(ME, access_token(&tokens)).await.status(), StatusCode::OK);
    app.stop().await;
}

backend_test!(a_bound_device_sends_no_token_only_fresh_proofs_by_its_key);
async fn a_bound_device_sends_no_token_only_fresh_proofs_by_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = TestUser::alice();
    let device_id = "bound-phone-0001";

    // Without a proof there is no key to register.
    let body = json!({"username": "alice", "password": "wonderland-demo",
        "device_id": device_id, "mode": "bound"});
    let response = Client::new().post(app.url(DEVICE_LOGIN)).json(&body).send().await.unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "dpop_proof_invalid").await;

    let mut phone = DpopClient::new(&app, ProofKey::p256());
    let response = phone.device_login(&alice, device_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("dpop-nonce"));
    let cookie = set_cookie(&response, "tl_device").unwrap();
    let login: Value = response.json().await.unwrap();
    assert_eq!(login["device"]["mode"], "bound");
    assert_eq!(login.get("device_token"), None, "nothing to copy: {login}");
    let stored = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM devices WHERE mode = 'bound' AND dpop_jkt = '{}' \
             AND token IS NULL AND token_hash IS NULL",
            phone.key.jkt
        ))
        .await;
    assert_eq!(stored, 1, "only the key's thumbprint is stored");

    let response = phone.device_get(DEVICE_ME, device_id, Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("dpop-nonce"));
    let me: Value = response.json().await.unwrap();
    assert_eq!(
        (me["user"]["username"].as_str(), me["renewed"].as_bool()),
        (Some("alice"), Some(false))
    );

    // (a) The cookie and the headers copied to another browser: without the key, nothing.
    let copied = Client::new()
        .get(app.url(DEVICE_ME))
        .header("cookie", format!("tl_device={cookie}"))
        .header("x-device-id", device_id);
    let response = copied.send().await.unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "device_credentials_missing").await;
    let guessed_token = Client::new()
        .get(app.url(DEVICE_ME))
        .header("cookie", format!("tl_device={cookie}"))
        .header("x-device-id", device_id)
        .header("x-device-token", &phone.key.jkt);
    let response = guessed_token.send().await.unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "device_token_mismatch").await;
    // A key of the thief's own signs valid proofs, of the wrong key.
    let mut thief = DpopClient::new(&app, ProofKey::ed25519(7));
    thief.nonce = phone.nonce.clone();
    let response = thief.device_get(DEVICE_ME, device_id, Some(&cookie)).await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "dpop_proof_invalid").await;
    let response = thief.device_get(DEVICE_ME, device_id, None).await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "device_unknown").await;

    // (b) A captured proof, replayed with the cookie or without it.
    let captured = phone.device_request(DEVICE_ME, device_id, Some(&cookie));
    let replay = captured.try_clone().unwrap();
    let proof = replay.try_clone().unwrap().build().unwrap().headers()["dpop"].clone();
    assert_eq!(captured.send().await.unwrap().status(), StatusCode::OK);
    assert_refused(replay.send().await.unwrap(), StatusCode::UNAUTHORIZED, "dpop_proof_replayed")
        .await;
    let replayed_elsewhere = Client::new()
        .get(app.url(DEVICE_ME))
        .header("x-device-id", device_id)
        .header("dpop", proof);
    let response = replayed_elsewhere.send().await.unwrap();
    assert_refused(response, StatusCode::UNAUTHORIZED, "dpop_proof_replayed").await;

    // The session gone (another browser session, or timed out): a fresh proof re-attaches.
    let response = phone.device_get(DEVICE_ME, device_id, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-session-renewed"], "1");
    assert!(set_cookie(&response, "tl_device").is_some_and(|fresh| fresh != cookie));

    // Endpoints shared by every scheme take the bound device's proof too.
    let response = phone.device_get("/api/orders/form-token", device_id, None).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Revoked (log out): the key is worthless from then on.
    let logout = Client::new()
        .post(app.url("/api/device/logout"))
        .header("x-device-id", device_id)
        .header("dpop", phone.proof("POST", "/api/device/logout", None))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let response = phone.device_get(DEVICE_ME, device_id, None).await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "device_revoked").await;
    app.stop().await;
}

backend_test!(the_command_line_client_signs_proofs_the_server_accepts);
/// `tokenlab dpop key` and `tokenlab dpop proof`, the curl user's DPoP client, as a shell would
/// run them: a key file, its thumbprint, and proofs the server accepts (the nonce dance included).
async fn the_command_line_client_signs_proofs_the_server_accepts(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("proof-key.pem");
    let key = key.to_str().unwrap();
    let run = |args: &[&str]| {
        let output =
            std::process::Command::new(env!("CARGO_BIN_EXE_tokenlab")).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let jkt = run(&["dpop", "key", "--out", key]);
    // The test server's clock is the test's; the command's is this machine's.
    let real_now = time::OffsetDateTime::now_utc().unix_timestamp();
    let offset = (app.clock.now().unix_timestamp() - real_now).to_string();
    let token_url = app.url(TOKEN);
    let proof = |extra: &[&str]| {
        let mut args = vec!["dpop", "proof", "--key", key, "--clock-offset", &offset];
        args.extend_from_slice(extra);
        run(&args)
    };
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "wonderland-demo")];
    let grant =
        |proof: String| Client::new().post(&token_url).header("dpop", proof).form(&form).send();

    let challenge = grant(proof(&["--method", "POST", "--url", &token_url])).await.unwrap();
    let nonce = challenge.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    grant_refused(challenge, "use_dpop_nonce", "use_dpop_nonce").await;
    let response =
        grant(proof(&["--method", "POST", "--url", &token_url, "--nonce", &nonce])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(payload(access_token(&tokens))["cnf"]["jkt"], jkt.as_str());

    let me_url = app.url(ME);
    let token = access_token(&tokens);
    let me_proof =
        proof(&["--method", "GET", "--url", &me_url, "--access-token", token, "--nonce", &nonce]);
    let response = Client::new()
        .get(&me_url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", me_proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}
