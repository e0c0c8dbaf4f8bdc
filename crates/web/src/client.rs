//! The lab's only way to talk to the server: the public HTTP API, exactly as curl would.
//!
//! Every call goes through [`ApiClient::call`], which records it in the request timeline, so what
//! the timeline shows is what was sent and received, not what a panel believes it did. Panels call
//! it through [`crate::api`], which decodes every body into the wire types the server sends.

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokenlab_core::Reason;
use tokenlab_core::display::{mask_authorization, mask_secret};

/// Request headers that carry authentication; shown (masked where secret) in the timeline.
const REQUEST_HEADERS_SHOWN: &[(&str, Masking)] = &[
    ("authorization", Masking::Authorization),
    ("x-device-id", Masking::None),
    ("x-device-token", Masking::Secret),
    ("dpop", Masking::Secret),
    ("idempotency-key", Masking::None),
];

/// Response headers worth seeing when learning how tokens move.
const RESPONSE_HEADERS_SHOWN: &[(&str, Masking)] = &[
    ("x-tokenlab-cookies", Masking::None),
    ("www-authenticate", Masking::None),
    ("retry-after", Masking::None),
    ("x-session-renewed", Masking::None),
    ("x-device-token", Masking::Secret),
    ("dpop-nonce", Masking::None),
    ("idempotent-replayed", Masking::None),
    ("x-tokenlab-refresh", Masking::None),
    ("x-tokenlab-db-queries", Masking::None),
    ("x-request-id", Masking::None),
];

#[derive(Clone, Copy)]
enum Masking {
    None,
    Secret,
    Authorization,
}

impl Masking {
    fn apply(self, value: &str) -> String {
        match self {
            Masking::None => value.to_owned(),
            Masking::Secret => mask_secret(value),
            Masking::Authorization => mask_authorization(value),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub id: u64,
    /// Who sent it, when not the page itself (the attack lab's attacker).
    pub sender: Option<&'static str>,
    pub method: Method,
    pub path: String,
    /// `None` when no response arrived (network error).
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// `(direction, name, value)`, direction being "→" for sent and "←" for received.
    pub headers: Vec<(&'static str, String, String)>,
    pub duration_ms: f64,
    pub network_error: Option<String>,
    /// `X-Tokenlab-Instance`: which server instance answered (several behind a load balancer).
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// The body as received: JSON, `Null` when empty, a string when not JSON. Read it through the
    /// wire types (`crate::api` decodes every body into one); the timeline shows it raw.
    pub body: Value,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as the wire type `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.body)
    }
}

/// A request the server refused: the status, and the reason and message of its error body
/// (`crate::api::ApiFailure::refusal`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub reason: Reason,
    pub message: String,
}

impl Refusal {
    /// What the reason means, from the one table in `tokenlab_core::reason`.
    pub fn explanation(&self) -> &'static str {
        self.reason.explanation()
    }
}

/// Whose browser a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// This page, with this browser's cookies.
    Page,
    /// Someone else's client: no cookies of this browser, only what it was told or stole.
    Attacker,
}

/// The page's handle on the API. Copies share one timeline; [`ApiClient::as_attacker`] and
/// [`ApiClient::unrecorded`] are copies that send differently.
#[derive(Clone, Copy)]
pub struct ApiClient {
    timeline: RwSignal<Vec<TimelineEntry>>,
    next_id: StoredValue<u64>,
    sender: Sender,
    recorded: bool,
}

impl Default for ApiClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiClient {
    pub fn new() -> Self {
        Self {
            timeline: RwSignal::new(Vec::new()),
            next_id: StoredValue::new(1),
            sender: Sender::Page,
            recorded: true,
        }
    }

    /// Another client than this page: its requests leave this browser's cookies behind, as they
    /// would on an attacker's machine. Recorded in the timeline, marked as the attacker's.
    pub fn as_attacker(self) -> Self {
        Self { sender: Sender::Attacker, ..self }
    }

    /// Reads without recording: for the inspector and the preset picker, whose own polling is not
    /// part of the lesson and would otherwise fill the timeline it is reacting to.
    pub fn unrecorded(self) -> Self {
        Self { recorded: false, ..self }
    }

    pub fn timeline(&self) -> ReadSignal<Vec<TimelineEntry>> {
        self.timeline.read_only()
    }

    pub fn clear_timeline(&self) {
        self.timeline.set(Vec::new());
    }

    /// Sends one request and records it. `Err` means no HTTP response at all. With a `timeout`,
    /// gives up after it, as a client on a bad network would; the server may still complete the
    /// request: that is what makes retries dangerous.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
        timeout: Option<std::time::Duration>,
    ) -> Result<ApiResponse, String> {
        if !self.recorded {
            let (status, headers, body) =
                transport::send(self.sender, method, path, body, headers, timeout).await?;
            return Ok(ApiResponse { status, body, headers });
        }
        self.record(method, path, body, headers, timeout).await
    }

    async fn record(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
        timeout: Option<std::time::Duration>,
    ) -> Result<ApiResponse, String> {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        let mut shown = Vec::new();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            if let Some((_, masking)) = REQUEST_HEADERS_SHOWN.iter().find(|(n, _)| *n == lower) {
                shown.push(("→", lower, masking.apply(value)));
            }
        }
        let started = now_ms();
        let sender = self.sender;
        let result = transport::send(sender, method, path, body, headers, timeout).await;
        let duration_ms = now_ms() - started;
        let mut entry = TimelineEntry {
            id,
            sender: (sender == Sender::Attacker).then_some("attacker"),
            method,
            path: path.to_owned(),
            status: None,
            reason: None,
            headers: shown,
            duration_ms,
            network_error: None,
            instance: None,
        };
        let outcome = match result {
            Ok((status, received, body)) => {
                entry.instance = received
                    .iter()
                    .find(|(n, _)| n == "x-tokenlab-instance")
                    .map(|(_, v)| v.clone());
                for (name, masking) in RESPONSE_HEADERS_SHOWN {
                    if let Some((_, value)) = received.iter().find(|(n, _)| n == name) {
                        entry.headers.push(("←", (*name).to_owned(), masking.apply(value)));
                    }
                }
                // The reason as the server spelled it: the timeline shows what was received.
                entry.reason = body.get("reason").and_then(Value::as_str).map(str::to_owned);
                entry.status = Some(status);
                Ok(ApiResponse { status, body, headers: received })
            }
            Err(err) => {
                entry.network_error = Some(err.clone());
                Err(err)
            }
        };
        self.timeline.update(|t| t.insert(0, entry));
        outcome
    }
}

#[cfg(feature = "hydrate")]
fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[cfg(not(feature = "hydrate"))]
fn now_ms() -> f64 {
    0.0
}

/// Milliseconds on the browser's wall clock, for measuring durations and ticking displays.
pub fn browser_now_ms() -> f64 {
    now_ms()
}

/// Milliseconds on the browser's monotonic clock (`performance.now()`), for measuring how long
/// something took: unlike the wall clock, it never jumps when the system time is adjusted.
/// Falls back to the wall clock where there is no `performance` object.
#[cfg(feature = "hydrate")]
pub fn monotonic_ms() -> f64 {
    use wasm_bindgen::JsCast as _;
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .filter(|performance| performance.is_object())
        .and_then(|performance| {
            let now = js_sys::Reflect::get(&performance, &"now".into()).ok()?;
            now.dyn_into::<js_sys::Function>().ok()?.call0(&performance).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

#[cfg(not(feature = "hydrate"))]
pub fn monotonic_ms() -> f64 {
    0.0
}

/// Waits in the browser without blocking it (a timer, not a busy loop).
pub async fn pause(duration: std::time::Duration) {
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = done.send(());
        },
        duration,
    );
    let _ = wait.await;
}

/// A fresh random `Idempotency-Key`: 128 bits from the browser's `crypto.getRandomValues`, which
/// (unlike `randomUUID`) also works on plain-http origins other than localhost.
#[cfg(feature = "hydrate")]
pub fn random_key() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        // Keys need to be unique, not secret; this only runs in a browser without Web Crypto.
        return format!("{}-{}", js_sys::Date::now(), js_sys::Math::random());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(not(feature = "hydrate"))]
pub fn random_key() -> String {
    String::new()
}

#[cfg(feature = "hydrate")]
mod transport {
    use gloo_net::http::{Method as HttpMethod, RequestBuilder};
    use serde_json::Value;
    use web_sys::RequestCredentials;

    use super::{Method, Sender};

    pub(super) async fn send(
        sender: Sender,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, String)],
        timeout: Option<std::time::Duration>,
    ) -> Result<(u16, Vec<(String, String)>, Value), String> {
        let abort = match timeout {
            Some(after) => {
                let controller = web_sys::AbortController::new().map_err(|e| format!("{e:?}"))?;
                let signal = controller.signal();
                leptos::prelude::set_timeout(move || controller.abort(), after);
                Some((signal, after))
            }
            None => None,
        };
        let http_method = match method {
            Method::Get => HttpMethod::GET,
            Method::Post => HttpMethod::POST,
            Method::Put => HttpMethod::PUT,
            Method::Delete => HttpMethod::DELETE,
        };
        let credentials = match sender {
            Sender::Page => RequestCredentials::SameOrigin,
            Sender::Attacker => RequestCredentials::Omit,
        };
        let mut builder = RequestBuilder::new(path)
            .method(http_method)
            .credentials(credentials)
            .abort_signal(abort.as_ref().map(|(signal, _)| signal));
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = match body {
            Some(body) => builder.json(&body),
            None => builder.build(),
        }
        .map_err(|e| e.to_string())?;
        let response = request.send().await.map_err(|e| match &abort {
            Some((signal, after)) if signal.aborted() => {
                format!("gave up after {} ms (client timeout)", after.as_millis())
            }
            _ => e.to_string(),
        })?;
        let received = response.headers().entries().collect::<Vec<_>>();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((response.status(), received, body))
    }
}

/// The server never runs the client: handlers and effects only execute in the browser. This keeps
/// the components compiling for server rendering.
#[cfg(not(feature = "hydrate"))]
mod transport {
    use serde_json::Value;

    use super::{Method, Sender};

    pub(super) async fn send(
        _sender: Sender,
        _method: Method,
        _path: &str,
        _body: Option<Value>,
        _headers: &[(&str, String)],
        _timeout: Option<std::time::Duration>,
    ) -> Result<(u16, Vec<(String, String)>, Value), String> {
        Err("the API client runs only in the browser".to_owned())
    }
}
