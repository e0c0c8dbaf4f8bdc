//! One typed call per endpoint the page uses, on the recording transport ([`ApiClient`]).
//!
//! Every body is decoded into the type the server serializes (`tokenlab_core::wire`), so a field
//! renamed on one side fails to compile on the other instead of reading as `null` here. A call
//! answers `Ok(Answer<T>)` for a 2xx whose body is a `T`, and `Err(ApiFailure)` otherwise: the
//! refusal's `ErrorBody` (or RFC 6749's `OAuthErrorBody` from the token endpoint), no answer at
//! all, or an answer outside the contract. Either way the raw response stays at hand, for the
//! headers the lab teaches with (`X-Session-Renewed`, `X-Device-Token`, `Idempotent-Replayed`,
//! `X-Tokenlab-Db-Queries`).
//!
//! Request bodies with a wire type (`NewOrder`, `ClockChange`, `ChoosePolicy`, `RevokeAll`) are
//! serialized from it. Those that carry a password or a refresh token have none (the server reads
//! them into secret types core does without) and are written here, once, as JSON.
//!
//! leptos' hackernews example (`src/api.rs`) is the model: one function per endpoint.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokenlab_core::Reason;
use tokenlab_core::device::DeviceMode;
use tokenlab_core::wire::{
    Account, BearerMe, ChoosePolicy, ClockChange, ClockState, CreatedOrder, DeviceList,
    DeviceLoginResponse, DeviceMe, ErrorBody, ErrorDetails, Family, FormToken, InspectorQuery,
    NewOrder, OAuthErrorBody, OrderList, PolicyChoice, ResetDone, RevokeAll, RevokedAll,
    ServerState, SessionList, SessionView, SessionsExpired, StatelessVerdict, TokenResponse,
};

use crate::client::{ApiClient, ApiResponse, Method, Refusal};
use crate::dpop::{self, ProofKey};

/// A call's decoded body and the response it came in. Derefs to the body, as axum's `Json` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub body: T,
    pub response: ApiResponse,
}

impl<T> Answer<T> {
    pub fn status(&self) -> u16 {
        self.response.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }

    pub fn into_body(self) -> T {
        self.body
    }

    /// Keeps the response, replacing the body with what `keep` takes from it.
    pub fn map<U>(self, keep: impl FnOnce(T) -> U) -> Answer<U> {
        Answer { body: keep(self.body), response: self.response }
    }
}

impl<T> Deref for Answer<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.body
    }
}

/// Why a call did not answer with what its endpoint promises on success.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    /// No HTTP answer: a network error, a client timeout, or a request that could not be made.
    NoAnswer(String),
    /// Refused, with the body every 4xx and 5xx of the API has.
    Refused { error: ErrorBody, response: ApiResponse },
    /// Refused by the token endpoint, with RFC 6749 §5.2's body (which names the reason too).
    OAuthRefused { error: OAuthErrorBody, response: ApiResponse },
    /// An answer outside the contract: an error without an error body, or a success whose body
    /// is not the endpoint's type.
    Unexpected { problem: String, response: ApiResponse },
}

impl ApiFailure {
    /// The response, when there was one.
    pub fn response(&self) -> Option<&ApiResponse> {
        match self {
            ApiFailure::NoAnswer(_) => None,
            ApiFailure::Refused { response, .. }
            | ApiFailure::OAuthRefused { response, .. }
            | ApiFailure::Unexpected { response, .. } => Some(response),
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status)
    }

    /// The refusal's reason; `None` when the server refused nothing it could name.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ApiFailure::Refused { error, .. } => Some(error.reason),
            ApiFailure::OAuthRefused { error, .. } => Some(error.reason),
            ApiFailure::NoAnswer(_) | ApiFailure::Unexpected { .. } => None,
        }
    }

    /// The server's message, or what went wrong where there was none.
    pub fn message(&self) -> &str {
        match self {
            ApiFailure::NoAnswer(problem) | ApiFailure::Unexpected { problem, .. } => problem,
            ApiFailure::Refused { error, .. } => &error.message,
            ApiFailure::OAuthRefused { error, .. } => &error.message,
        }
    }

    /// The facts a refusal carries beside its reason (`original_order_id` with
    /// `duplicate_submit`).
    pub fn details(&self) -> Option<&ErrorDetails> {
        match self {
            ApiFailure::Refused { error, .. } => Some(&error.details),
            _ => None,
        }
    }

    /// Status, reason and message, when the server refused.
    pub fn refusal(&self) -> Option<Refusal> {
        Some(Refusal {
            status: self.status()?,
            reason: self.reason()?,
            message: self.message().to_owned(),
        })
    }
}

/// `401 not_logged_in`; a failure without a response reads as what went wrong.
impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status(), self.reason()) {
            (Some(status), Some(reason)) => write!(f, "{status} {reason}"),
            (Some(status), None) => write!(f, "{status} ({})", self.message()),
            (None, _) => f.write_str(self.message()),
        }
    }
}

/// What every call answers.
pub type ApiResult<T> = Result<Answer<T>, ApiFailure>;

/// The response a call got, refused or not: for the headers and counts a step reads either way.
pub fn raw<T>(result: &ApiResult<T>) -> Option<&ApiResponse> {
    match result {
        Ok(answer) => Some(&answer.response),
        Err(failure) => failure.response(),
    }
}

/// A device's credential, as every device-token call sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    /// `X-Device-Id`.
    pub id: String,
    /// `X-Device-Token` (as written, hardened).
    pub token: String,
    /// A bound device's key: a `DPoP` proof by it instead of any token.
    pub key: Option<ProofKey>,
}

/// What a call authenticates with besides this browser's cookies, which the page always sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Only the cookies: `tl_session`, `tl_device` or `tl_refresh`, as the browser holds them.
    Cookies,
    /// `X-Device-Id` and `X-Device-Token`, or a bound device's proof.
    Device(DeviceCredentials),
    /// `Authorization: Bearer <access token>`.
    Bearer(String),
    /// `Authorization: DPoP <access token>`, with a fresh proof by the key it is bound to.
    Dpop { token: String, key: ProofKey },
}

impl Credential {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Credential::Cookies => Vec::new(),
            Credential::Device(device) => device.headers(),
            Credential::Bearer(token) => vec![("Authorization", format!("Bearer {token}"))],
            Credential::Dpop { token, .. } => vec![("Authorization", format!("DPoP {token}"))],
        }
    }

    /// The key each request's proof is signed with, and the access token the proof names.
    fn prover(&self) -> Option<(&ProofKey, Option<&str>)> {
        match self {
            Credential::Device(DeviceCredentials { key: Some(key), .. }) => Some((key, None)),
            Credential::Dpop { token, key } => Some((key, Some(token))),
            _ => None,
        }
    }
}

impl DeviceCredentials {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self.key {
            Some(_) => vec![("X-Device-Id", self.id.clone())],
            None => vec![("X-Device-Id", self.id.clone()), ("X-Device-Token", self.token.clone())],
        }
    }
}

/// Where the token endpoint puts the refresh token it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshIn {
    /// Only in the HttpOnly cookie `tl_refresh`, out of the page's JavaScript
    /// (`X-Refresh-Cookie: 1`): how the page keeps it.
    Cookie,
    /// In the body, as a native client receives it.
    Body,
}

/// Which refresh token a refresh presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFrom<'a> {
    /// The cookie `tl_refresh`; the new one comes back in the cookie too.
    Cookie,
    /// This token, in the body; the new one comes back in the body too.
    Token(&'a str),
}

/// The network an order travels over, in the demo: how long the server holds it
/// (`X-Demo-Delay-Ms`), and when the client gives up waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    pub server_delay_ms: Option<u64>,
    pub client_timeout: Option<Duration>,
}

/// One request, answered as the contract says: `Ok` for a 2xx, the refusal decoded otherwise.
async fn exchange(
    client: &ApiClient,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
    timeout: Option<Duration>,
) -> Result<ApiResponse, ApiFailure> {
    let response =
        client.call(method, path, body, headers, timeout).await.map_err(ApiFailure::NoAnswer)?;
    if response.ok() {
        return Ok(response);
    }
    // The token endpoint's body has RFC 6749's `error` beside the reason; every other refusal
    // (the token endpoint's cross-site one included) is an `ErrorBody`.
    if let Ok(error) = response.decode::<OAuthErrorBody>() {
        return Err(ApiFailure::OAuthRefused { error, response });
    }
    match response.decode::<ErrorBody>() {
        Ok(error) => Err(ApiFailure::Refused { error, response }),
        Err(err) => Err(ApiFailure::Unexpected {
            problem: format!("a {} without an error body: {err}", response.status),
            response,
        }),
    }
}

/// One request as `credential`: its headers, and for a key a fresh proof (`DPoP`), signed again
/// once with the new nonce when the server answers `use_dpop_nonce` (RFC 9449 §8).
async fn exchange_as(
    client: &ApiClient,
    credential: &Credential,
    method: Method,
    path: &str,
    body: Option<Value>,
    extra_headers: &[(&str, String)],
    timeout: Option<Duration>,
) -> Result<ApiResponse, ApiFailure> {
    let mut headers: Vec<(&str, String)> = credential.headers();
    headers.extend(extra_headers.iter().cloned());
    let Some((key, access_token)) = credential.prover() else {
        return exchange(client, method, path, body, &headers, timeout).await;
    };
    proved(client, key, access_token, method, path, body, &headers, timeout).await
}

/// A request with a proof by `key`, retried once with a new proof when the nonce was stale.
#[allow(clippy::too_many_arguments)] // One request's parts, each as `exchange` takes it.
async fn proved(
    client: &ApiClient,
    key: &ProofKey,
    access_token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
    timeout: Option<Duration>,
) -> Result<ApiResponse, ApiFailure> {
    let mut retried = false;
    loop {
        let proof =
            key.proof(method.as_str(), path, access_token).await.map_err(ApiFailure::NoAnswer)?;
        let mut with_proof = headers.to_vec();
        with_proof.push(("DPoP", proof));
        let result = exchange(client, method, path, body.clone(), &with_proof, timeout).await;
        let answered = match &result {
            Ok(response) => Some(response),
            Err(failure) => failure.response(),
        };
        if let Some(nonce) = answered.and_then(|r| r.header("dpop-nonce")) {
            dpop::remember_nonce(nonce);
        }
        match &result {
            Err(failure) if !retried && failure.reason() == Some(Reason::UseDpopNonce) => {
                retried = true;
            }
            _ => return result,
        }
    }
}

/// [`fetch`] as `credential`.
async fn fetch_as<T: DeserializeOwned>(
    client: &ApiClient,
    credential: &Credential,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> ApiResult<T> {
    decode(exchange_as(client, credential, method, path, body, &[], None).await?)
}

/// [`act`] as `credential`.
async fn act_as(
    client: &ApiClient,
    credential: &Credential,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> ApiResult<()> {
    let response = exchange_as(client, credential, method, path, body, &[], None).await?;
    Ok(Answer { body: (), response })
}

/// A call whose success has a body of type `T`.
async fn fetch<T: DeserializeOwned>(
    client: &ApiClient,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> ApiResult<T> {
    decode(exchange(client, method, path, body, headers, None).await?)
}

/// A call whose success has no body worth reading (204, or RFC 7009's empty 200).
async fn act(
    client: &ApiClient,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, String)],
) -> ApiResult<()> {
    let response = exchange(client, method, path, body, headers, None).await?;
    Ok(Answer { body: (), response })
}

fn decode<T: DeserializeOwned>(response: ApiResponse) -> ApiResult<T> {
    match response.decode::<T>() {
        Ok(body) => Ok(Answer { body, response }),
        Err(err) => Err(ApiFailure::Unexpected {
            problem: format!("the answer is not what the API sends: {err}"),
            response,
        }),
    }
}

/// A request body from its wire type.
fn encode(body: &impl Serialize) -> Result<Value, ApiFailure> {
    serde_json::to_value(body)
        .map_err(|err| ApiFailure::NoAnswer(format!("the request could not be encoded: {err}")))
}

// Accounts.

/// `POST /api/accounts`.
pub async fn register(client: &ApiClient, username: &str, password: &str) -> ApiResult<Account> {
    let body = json!({ "username": username, "password": password });
    fetch(client, Method::Post, "/api/accounts", Some(body), &[]).await
}

// Scheme 2: the session id as the token.

/// `POST /api/session/login`: the session id comes back as the HttpOnly cookie `tl_session`.
pub async fn session_login(
    client: &ApiClient,
    username: &str,
    password: &str,
) -> ApiResult<SessionView> {
    let body = json!({ "username": username, "password": password });
    fetch(client, Method::Post, "/api/session/login", Some(body), &[]).await
}

/// `GET /api/session/me`, with the session cookie.
pub async fn session_me(client: &ApiClient) -> ApiResult<SessionView> {
    fetch(client, Method::Get, "/api/session/me", None, &[]).await
}

/// `POST /api/session/logout`.
pub async fn session_logout(client: &ApiClient) -> ApiResult<()> {
    act(client, Method::Post, "/api/session/logout", None, &[]).await
}

// Scheme 1: the device token.

/// `POST /api/device/login`.
pub async fn device_login(
    client: &ApiClient,
    username: &str,
    password: &str,
    device_id: &str,
    mode: DeviceMode,
) -> ApiResult<DeviceLoginResponse> {
    let body = json!({
        "username": username,
        "password": password,
        "device_id": device_id,
        "mode": mode.as_str(),
    });
    fetch(client, Method::Post, "/api/device/login", Some(body), &[]).await
}

/// `POST /api/device/login` in mode `bound`: a proof by this browser's key registers the key as
/// the device's; no token comes back, and every later call carries a proof instead.
pub async fn device_login_bound(
    client: &ApiClient,
    username: &str,
    password: &str,
    device_id: &str,
    key: &ProofKey,
) -> ApiResult<DeviceLoginResponse> {
    let body = json!({
        "username": username,
        "password": password,
        "device_id": device_id,
        "mode": DeviceMode::Bound.as_str(),
    });
    let path = "/api/device/login";
    decode(proved(client, key, None, Method::Post, path, Some(body), &[], None).await?)
}

/// `GET /api/device/me`. A re-attach answers `X-Session-Renewed: 1` and, hardened, a new secret
/// in `X-Device-Token`.
pub async fn device_me(client: &ApiClient, device: &DeviceCredentials) -> ApiResult<DeviceMe> {
    fetch_as(client, &Credential::Device(device.clone()), Method::Get, "/api/device/me", None).await
}

/// `GET /api/device/devices`.
pub async fn devices(client: &ApiClient, device: &DeviceCredentials) -> ApiResult<DeviceList> {
    let credential = Credential::Device(device.clone());
    fetch_as(client, &credential, Method::Get, "/api/device/devices", None).await
}

/// `DELETE /api/device/devices/{id}`.
pub async fn revoke_device(
    client: &ApiClient,
    device: &DeviceCredentials,
    id: i64,
) -> ApiResult<()> {
    let path = format!("/api/device/devices/{id}");
    act_as(client, &Credential::Device(device.clone()), Method::Delete, &path, None).await
}

/// `POST /api/device/logout`: this device.
pub async fn device_logout(client: &ApiClient, device: &DeviceCredentials) -> ApiResult<()> {
    act_as(client, &Credential::Device(device.clone()), Method::Post, "/api/device/logout", None)
        .await
}

/// `POST /api/device/logout-all`: every device of the user.
pub async fn device_logout_all(client: &ApiClient, device: &DeviceCredentials) -> ApiResult<()> {
    let credential = Credential::Device(device.clone());
    act_as(client, &credential, Method::Post, "/api/device/logout-all", None).await
}

// Access + refresh tokens.

/// `POST /api/oauth/token`, `grant_type=password` (as JSON, which the endpoint also accepts).
pub async fn password_grant(
    client: &ApiClient,
    username: &str,
    password: &str,
    refresh_in: RefreshIn,
) -> ApiResult<TokenResponse> {
    let body = json!({ "grant_type": "password", "username": username, "password": password });
    let headers = match refresh_in {
        RefreshIn::Cookie => vec![("X-Refresh-Cookie", "1".to_owned())],
        RefreshIn::Body => Vec::new(),
    };
    fetch(client, Method::Post, "/api/oauth/token", Some(body), &headers).await
}

/// [`password_grant`] with a proof by `key` (RFC 9449): both tokens come back bound to it
/// (`token_type: DPoP`).
pub async fn password_grant_bound(
    client: &ApiClient,
    username: &str,
    password: &str,
    refresh_in: RefreshIn,
    key: &ProofKey,
) -> ApiResult<TokenResponse> {
    let body = json!({ "grant_type": "password", "username": username, "password": password });
    let headers = match refresh_in {
        RefreshIn::Cookie => vec![("X-Refresh-Cookie", "1".to_owned())],
        RefreshIn::Body => Vec::new(),
    };
    let path = "/api/oauth/token";
    decode(proved(client, key, None, Method::Post, path, Some(body), &headers, None).await?)
}

/// [`refresh`] of a bound refresh token: only a proof by its key exchanges it.
pub async fn refresh_bound(
    client: &ApiClient,
    from: RefreshFrom<'_>,
    key: &ProofKey,
) -> ApiResult<TokenResponse> {
    let (body, headers) = refresh_request(from);
    let path = "/api/oauth/token";
    decode(proved(client, key, None, Method::Post, path, Some(body), &headers, None).await?)
}

fn refresh_request(from: RefreshFrom<'_>) -> (Value, Vec<(&'static str, String)>) {
    match from {
        RefreshFrom::Cookie => {
            (json!({ "grant_type": "refresh_token" }), vec![("X-Refresh-Cookie", "1".to_owned())])
        }
        RefreshFrom::Token(token) => {
            (json!({ "grant_type": "refresh_token", "refresh_token": token }), Vec::new())
        }
    }
}

/// `POST /api/oauth/token`, `grant_type=refresh_token`: a new access token and a new refresh token
/// that replaces the one presented.
pub async fn refresh(client: &ApiClient, from: RefreshFrom<'_>) -> ApiResult<TokenResponse> {
    let (body, headers) = refresh_request(from);
    fetch(client, Method::Post, "/api/oauth/token", Some(body), &headers).await
}

/// `POST /api/oauth/revoke` with the refresh cookie: ends its family (RFC 7009; always 200).
pub async fn revoke_refresh_cookie(client: &ApiClient) -> ApiResult<()> {
    act(client, Method::Post, "/api/oauth/revoke", Some(json!({})), &[]).await
}

/// `GET /api/oauth/family`: the refresh cookie's family, oldest token first.
pub async fn family(client: &ApiClient) -> ApiResult<Family> {
    fetch(client, Method::Get, "/api/oauth/family", None, &[]).await
}

/// `GET path` with exactly `headers` and nothing else: a request as an attacker builds it by hand
/// (a copied header, a replayed proof). The body is read as plain JSON.
pub async fn get_with_headers(
    client: &ApiClient,
    path: &str,
    headers: &[(&str, String)],
) -> ApiResult<Value> {
    fetch(client, Method::Get, path, None, headers).await
}

/// `GET /api/jwt/me` as `credential` (`Bearer`, or `DPoP` with a proof).
pub async fn jwt_me_as(client: &ApiClient, credential: &Credential) -> ApiResult<BearerMe> {
    fetch_as(client, credential, Method::Get, "/api/jwt/me", None).await
}

/// `GET /api/jwt/me` with `Authorization: Bearer`.
pub async fn jwt_me(client: &ApiClient, access_token: &str) -> ApiResult<BearerMe> {
    let headers = Credential::Bearer(access_token.to_owned()).headers();
    fetch(client, Method::Get, "/api/jwt/me", None, &headers).await
}

// Duplicate submits.

/// `GET /api/orders/form-token`: a one-time token for one order form.
pub async fn form_token(client: &ApiClient, credential: &Credential) -> ApiResult<FormToken> {
    fetch_as(client, credential, Method::Get, "/api/orders/form-token", None).await
}

/// `GET /api/orders`.
pub async fn orders(client: &ApiClient, credential: &Credential) -> ApiResult<OrderList> {
    fetch_as(client, credential, Method::Get, "/api/orders", None).await
}

/// `POST /api/orders`, protected by the order's form token or by an `Idempotency-Key`. A replay
/// of a finished key answers the stored response with `Idempotent-Replayed: true`.
pub async fn place_order(
    client: &ApiClient,
    credential: &Credential,
    order: &NewOrder,
    idempotency_key: Option<&str>,
    network: Network,
) -> ApiResult<CreatedOrder> {
    let mut headers = Vec::new();
    if let Some(key) = idempotency_key {
        headers.push(("Idempotency-Key", key.to_owned()));
    }
    if let Some(ms) = network.server_delay_ms {
        headers.push(("X-Demo-Delay-Ms", ms.to_string()));
    }
    let body = encode(order)?;
    let timeout = network.client_timeout;
    let path = "/api/orders";
    let response =
        exchange_as(client, credential, Method::Post, path, Some(body), &headers, timeout).await?;
    decode(response)
}

// Every sign-in of the user.

/// `GET /api/sessions`: the asker's own entry is marked `current`.
pub async fn sessions(client: &ApiClient, credential: &Credential) -> ApiResult<SessionList> {
    fetch_as(client, credential, Method::Get, "/api/sessions", None).await
}

/// `DELETE /api/sessions/{id}`.
pub async fn end_session(client: &ApiClient, credential: &Credential, id: &str) -> ApiResult<()> {
    let path = format!("/api/sessions/{id}");
    act_as(client, credential, Method::Delete, &path, None).await
}

/// `POST /api/sessions/revoke-all`: sign out everywhere.
pub async fn revoke_all(
    client: &ApiClient,
    credential: &Credential,
    request: &RevokeAll,
) -> ApiResult<RevokedAll> {
    let body = encode(request)?;
    fetch_as(client, credential, Method::Post, "/api/sessions/revoke-all", Some(body)).await
}

// The lab's controls (demo profile; 404 `not_found` elsewhere).

/// `GET /api/demo/clock`.
pub async fn clock(client: &ApiClient) -> ApiResult<ClockState> {
    fetch(client, Method::Get, "/api/demo/clock", None, &[]).await
}

/// `POST /api/demo/clock`: move it forward, or back to the real time.
pub async fn change_clock(client: &ApiClient, change: &ClockChange) -> ApiResult<ClockState> {
    let body = encode(change)?;
    fetch(client, Method::Post, "/api/demo/clock", Some(body), &[]).await
}

/// `POST /api/demo/reset`: every demo row gone, the clock and the preset back.
pub async fn reset_demo(client: &ApiClient) -> ApiResult<ResetDone> {
    fetch(client, Method::Post, "/api/demo/reset", None, &[]).await
}

/// `POST /api/demo/sessions/expire`: every server session of every user times out now.
pub async fn expire_sessions(client: &ApiClient) -> ApiResult<SessionsExpired> {
    fetch(client, Method::Post, "/api/demo/sessions/expire", None, &[]).await
}

/// `GET /api/demo/stateless-jwt`: the bearer checked as most JWT setups do, without revocation.
pub async fn stateless_jwt(client: &ApiClient, access_token: &str) -> ApiResult<StatelessVerdict> {
    let headers = Credential::Bearer(access_token.to_owned()).headers();
    fetch(client, Method::Get, "/api/demo/stateless-jwt", None, &headers).await
}

/// `GET /api/demo/policy`: the token-policy preset in force, and the others.
pub async fn policy(client: &ApiClient) -> ApiResult<PolicyChoice> {
    fetch(client, Method::Get, "/api/demo/policy", None, &[]).await
}

/// `PUT /api/demo/policy`.
pub async fn choose_policy(client: &ApiClient, choice: &ChoosePolicy) -> ApiResult<PolicyChoice> {
    let body = encode(choice)?;
    fetch(client, Method::Put, "/api/demo/policy", Some(body), &[]).await
}

/// `GET /api/demo/inspector`: what the database holds for one user.
pub async fn server_state(client: &ApiClient, query: &InspectorQuery) -> ApiResult<ServerState> {
    let path = match &query.username {
        Some(username) => format!("/api/demo/inspector?username={username}"),
        None => "/api/demo/inspector".to_owned(),
    };
    fetch(client, Method::Get, &path, None, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: Value) -> ApiResponse {
        ApiResponse { status, body, headers: Vec::new() }
    }

    #[test]
    fn a_success_is_its_wire_type_or_outside_the_contract() {
        let body = json!({ "now": "2026-01-02T03:04:05Z", "offset_seconds": 60 });
        let answer = decode::<ClockState>(response(200, body));
        assert!(answer.is_ok_and(|clock| clock.offset_seconds == 60));
        let renamed = json!({ "now": "2026-01-02T03:04:05Z", "offset": 60 });
        let failure = decode::<ClockState>(response(200, renamed));
        assert!(matches!(failure, Err(ApiFailure::Unexpected { .. })), "{failure:?}");
    }

    #[test]
    fn failures_read_as_status_and_reason() {
        let error = ErrorBody {
            reason: Reason::DuplicateSubmit,
            message: "already submitted".into(),
            details: ErrorDetails { original_order_id: Some(7) },
        };
        let refused = ApiFailure::Refused { error, response: response(409, Value::Null) };
        assert_eq!(refused.to_string(), "409 duplicate_submit");
        assert_eq!(refused.reason(), Some(Reason::DuplicateSubmit));
        assert_eq!(refused.details().and_then(|d| d.original_order_id), Some(7));
        let refusal = refused.refusal();
        assert_eq!(refusal.map(|r| (r.status, r.reason)), Some((409, Reason::DuplicateSubmit)));

        let lost = ApiFailure::NoAnswer("gave up after 1000 ms (client timeout)".into());
        assert_eq!(lost.to_string(), "gave up after 1000 ms (client timeout)");
        assert_eq!((lost.status(), lost.reason(), lost.refusal()), (None, None, None));
    }
}
