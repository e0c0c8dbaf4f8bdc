//! What every request crosses (its id, its log span, the headers every answer carries), the log
//! lines' fields, and the cookie-name header the lab's timeline shows.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::cookie::Cookie;
use std::fmt::{self, Write as _};
use tracing::Instrument as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// `X-Tokenlab-Cookies: sent=a,b; set=c` (either part omitted when empty): which cookies
/// travelled, by name only.
///
/// The browser hides HttpOnly cookies from JavaScript (that is the point of HttpOnly), so without
/// this the request timeline could not show which session cookie a call carried or received.
/// Names are not secrets; values never appear.
pub static COOKIE_NAMES_HEADER: HeaderName = HeaderName::from_static("x-tokenlab-cookies");

/// The id the server gives every request, in its log lines and its answer.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where a client's own `X-Request-Id` goes: it is logged beside ours, never as ours, so a client
/// cannot choose (or forge, or collide) the id under which the server logs its request.
pub static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

/// What every request crosses, in one middleware: its id, its log span, and the headers every
/// answer carries.
///
/// - A client's own `X-Request-Id` moves to `X-Client-Request-Id`, so the server always gives its
///   own id (a UUID), in the request's log lines and its answer.
/// - The request's log span carries its method, path and ids, so every line a request causes says
///   which request it was. A server error (a 500, or the handler timeout's 503) is logged with its
///   latency, so a timeout that no handler got to log is still seen.
/// - Every answer says which instance gave it, and carries `Referrer-Policy` and
///   `X-Content-Type-Options` unless its handler set its own.
/// - In the demo, [`COOKIE_NAMES_HEADER`] reports which cookies travelled.
///
/// One middleware rather than tower-http's request-id, trace and set-header layers, one each (#14):
/// each layer moved the request and its answer once more, and `TraceLayer` also wrapped every body
/// to enter the span on each frame, timed every request, and asked the log filter about its
/// request and response events (at `DEBUG`, which the default filter does not write). callgrind
/// counted `/livez` at 28 700 instructions a request through those layers and 24 000 through this
/// one; a bare axum handler takes 13 100. Log lines written while a streamed body (an SSR page) is
/// being sent carry no request fields; the handler's do.
#[derive(Debug, Clone)]
pub struct EveryRequest {
    /// `X-Tokenlab-Instance`'s value.
    pub instance: HeaderValue,
    /// Whether to add [`COOKIE_NAMES_HEADER`] (a lab instrument: production does not advertise it).
    pub report_cookie_names: bool,
}

/// `X-Tokenlab-Instance`: the name of the instance that answered (`--instance`). Behind a load
/// balancer, the lab's timeline shows it.
pub static INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-tokenlab-instance");

impl crate::middleware::Around for EveryRequest {
    fn around<S: crate::middleware::NextService>(
        &self,
        mut request: Request,
        next: crate::middleware::Next<'_, S>,
    ) -> crate::middleware::Answer {
        let ours = new_request_id();
        let headers = request.headers_mut();
        // By `HeaderName`: a name given as text is parsed on every request.
        let theirs = headers.remove(&REQUEST_ID);
        headers.insert(REQUEST_ID.clone(), ours.clone());
        if let Some(theirs) = &theirs {
            headers.insert(CLIENT_REQUEST_ID.clone(), theirs.clone());
        }
        // Whatever the request carries as the client's id now: the one set aside, or one the client
        // sent under that name itself.
        let span = request_span(&request, &ours, request.headers().get(&CLIENT_REQUEST_ID));
        let sent = self.report_cookie_names.then(|| {
            cookie_names(
                request
                    .headers()
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(Cookie::split_parse)
                    .filter_map(Result::ok),
            )
        });
        let instance = self.instance.clone();
        // Latency is an observation of this process, not a time the lab's rules read: the
        // monotonic clock, not the injected one.
        let started = std::time::Instant::now();
        // The handler's synchronous part runs in the span too.
        let answer = span.in_scope(|| next.run(request));
        Box::pin(
            async move {
                let mut response = answer.await;
                let status = response.status();
                if status.is_server_error() {
                    tracing::error!(
                        status = status.as_u16(),
                        latency_ms = started.elapsed().as_millis(),
                        "response failed"
                    );
                }
                if let Some(sent) = sent {
                    report_cookie_names(sent, &mut response);
                }
                let headers = response.headers_mut();
                headers.insert(INSTANCE_HEADER.clone(), instance);
                headers
                    .entry(header::REFERRER_POLICY)
                    .or_insert_with(|| HeaderValue::from_static("same-origin"));
                headers
                    .entry(header::X_CONTENT_TYPE_OPTIONS)
                    .or_insert_with(|| HeaderValue::from_static("nosniff"));
                headers.entry(REQUEST_ID.clone()).or_insert(ours);
                response
            }
            .instrument(span),
        )
    }
}

/// A fresh UUID (v4) as a header value: an id to find a request's log lines by, not a secret.
fn new_request_id() -> HeaderValue {
    let mut text = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    // Hex digits and hyphens are always a valid header value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn request_span(
    request: &Request,
    ours: &HeaderValue,
    theirs: Option<&HeaderValue>,
) -> tracing::Span {
    // Only when the client sent one: every field costs formatting on every request.
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = ours.to_str().unwrap_or("-"),
        client_request_id = tracing::field::Empty,
    );
    if let Some(theirs) = theirs.and_then(|v| v.to_str().ok()) {
        span.record("client_request_id", theirs);
    }
    span
}

fn report_cookie_names(sent: String, response: &mut Response) {
    let set = cookie_names(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| Cookie::parse(v).ok()),
    );
    let report = [("sent", sent), ("set", set)]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(direction, names)| format!("{direction}={names}"))
        .collect::<Vec<_>>()
        .join("; ");
    if !report.is_empty()
        && let Ok(value) = HeaderValue::from_str(&report)
    {
        response.headers_mut().insert(COOKIE_NAMES_HEADER.clone(), value);
    }
}

fn cookie_names<'a>(cookies: impl Iterator<Item = Cookie<'a>>) -> String {
    cookies
        .map(|cookie| cookie.name().to_owned())
        .filter(|name| !name.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Log fields as `name=value`: the text tracing-subscriber's `DefaultFields` writes to a file,
/// without its styling. `DefaultFields` runs every field name through a terminal style even with
/// colours off, and writes each piece into the span's record apart, which grows it piece by
/// piece: the request span's fields cost `/livez` about 6 000 instructions that way, about 2 000
/// this way (#14). Control characters in what a value writes are escaped (`\n`,
/// `\u{1b}`), so no value — a logged message quoting a client, say — can start a forged log
/// line or drive a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Into one buffer first, then out in one piece: a span's record grows once rather than
        // once for every piece written.
        let mut line = String::with_capacity(160);
        let mut visitor = PlainVisitor { out: &mut line, started: false, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result?;
        writer.write_str(&line)
    }
}

struct PlainVisitor<'a> {
    out: &'a mut String,
    /// A field was begun, even one that wrote nothing (an empty message): the next is separated.
    started: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Starts a field: its separator and name (none for the message). `false` when the field is
    /// not written.
    fn begin(&mut self, field: &Field) -> bool {
        let name = field.name();
        // What `tracing-log` carries over from a `log` record is in the line already.
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if std::mem::replace(&mut self.started, true) {
            self.out.push(' ');
        }
        if name != "message" {
            self.out.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.out.push('=');
        }
        true
    }

    fn escaped(&mut self, value: fmt::Arguments<'_>) {
        self.result = EscapeControls(&mut *self.out).write_fmt(value);
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.begin(field) {
            return;
        }
        // As `DefaultFields`: the message bare, any other string quoted as `Debug` quotes it
        // (which escapes control characters itself). Most strings (ids, paths) need no escape
        // at all, and are copied as they are.
        if field.name() == "message" {
            self.result = EscapeControls(&mut *self.out).write_str(value);
        } else if value.bytes().all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\') {
            self.out.push('"');
            self.out.push_str(value);
            self.out.push('"');
        } else {
            self.result = write!(self.out, "{value:?}");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.begin(field) {
            self.escaped(format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !self.begin(field) {
            return;
        }
        // As `DefaultFields`: `error=outer error.sources=[cause, its cause]`.
        match value.source() {
            None => self.escaped(format_args!("{value}")),
            Some(source) => {
                let name = field.name();
                self.escaped(format_args!("{value} {name}.sources=[{}]", SourceList(source)));
            }
        }
    }
}

/// An error's causes, outermost first, separated by commas.
struct SourceList<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for SourceList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut next = Some(self.0);
        let mut first = true;
        while let Some(error) = next {
            if !std::mem::take(&mut first) {
                f.write_str(", ")?;
            }
            write!(f, "{error}")?;
            next = error.source();
        }
        Ok(())
    }
}

/// Writes control characters (other than tab) as Rust escapes.
struct EscapeControls<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for EscapeControls<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // The C0 controls and DEL are single bytes; the C1 controls start with 0xC2. Text with
        // none of these bytes — nearly all — is written as it is.
        if !text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2) {
            return self.0.write_str(text);
        }
        let mut plain = text;
        while let Some(at) = plain.find(|c: char| c.is_control() && c != '\t') {
            let (before, rest) = plain.split_at(at);
            self.0.write_str(before)?;
            let mut chars = rest.chars();
            if let Some(control) = chars.next() {
                write!(self.0, "{}", control.escape_debug())?;
            }
            plain = chars.as_str();
        }
        self.0.write_str(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cookie, EveryRequest, PlainFields, cookie_names};
    use crate::middleware::AroundLayer;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
    use axum::response::{IntoResponse as _, Response};
    use axum::routing::get;
    use std::sync::{Arc, Mutex};
    use tower::{Layer as _, Service as _};

    /// A subscriber writing as the server's does (without times), and what it has written.
    fn capturing<F>(fields: F) -> (impl tracing::Subscriber + Send + Sync, Arc<Mutex<Vec<u8>>>)
    where
        F: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&written);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(Arc::clone(&sink)))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(fields)
            .finish();
        (subscriber, written)
    }

    fn text(written: &Mutex<Vec<u8>>) -> String {
        let bytes = written.lock().map(|w| w.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// What a subscriber formatting fields with `fields` writes for one event in a request span.
    fn logged<F>(fields: F, event: impl FnOnce()) -> String
    where
        F: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let (subscriber, written) = capturing(fields);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                method = %"GET",
                path = %"/api/session/me",
                request_id = "0b6f",
                r#type = 3,
            );
            span.in_scope(event);
        });
        text(&written)
    }

    /// Sends `request` through [`EveryRequest`] to a router whose handlers show what they were
    /// given: `/echo` answers the request's ids as `ours theirs`, `/own` sets its own
    /// `Referrer-Policy`, `/timeout` answers 503 as the handler timeout does, `/fails` a 500.
    async fn through_every_request(report_cookie_names: bool, request: Request<Body>) -> Response {
        fn id(headers: &HeaderMap, name: &HeaderName) -> String {
            headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
        }
        let handlers = Router::new()
            .route(
                "/echo",
                get(|headers: HeaderMap| async move {
                    let ours = id(&headers, &super::REQUEST_ID);
                    format!("{ours} {}", id(&headers, &super::CLIENT_REQUEST_ID))
                }),
            )
            .route(
                "/own",
                get(|| async {
                    let own = [
                        (header::REFERRER_POLICY, "no-referrer"),
                        (header::X_CONTENT_TYPE_OPTIONS, "own"),
                        (header::SET_COOKIE, "c=1"),
                        (super::REQUEST_ID.clone(), "the-handlers-own"),
                    ];
                    (own, "").into_response()
                }),
            )
            .route(
                "/logs",
                get(|| {
                    tracing::info!("before the handler's future");
                    async {
                        tracing::info!("inside the handler");
                    }
                }),
            )
            .route("/timeout", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route("/fails", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
        let layer = AroundLayer(EveryRequest {
            instance: HeaderValue::from_static("lab-1"),
            report_cookie_names,
        });
        let mut service = layer.layer(handlers);
        std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
        service.call(request).await.unwrap()
    }

    fn get_request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_server_gives_every_request_its_own_id_and_keeps_the_clients_apart() {
        for (theirs, client_id_seen) in [(None, "none"), (Some("abc-123"), "abc-123")] {
            let headers: Vec<(&str, &str)> =
                theirs.map(|t| ("x-request-id", t)).into_iter().collect();
            let response = through_every_request(false, get_request("/echo", &headers)).await;
            let answered_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            let seen = body_text(response).await;
            let (ours_seen, theirs_seen) = seen.split_once(' ').unwrap();
            assert_eq!(ours_seen.len(), 36, "a UUID: {ours_seen}");
            assert!(uuid::Uuid::parse_str(ours_seen).is_ok(), "{ours_seen}");
            assert_eq!(answered_id, ours_seen, "the answer names the id the handler was given");
            assert_eq!(theirs_seen, client_id_seen, "theirs as X-Client-Request-Id");
        }
        let first = through_every_request(false, get_request("/echo", &[])).await;
        let second = through_every_request(false, get_request("/echo", &[])).await;
        assert_ne!(first.headers()["x-request-id"], second.headers()["x-request-id"]);
    }

    #[tokio::test]
    async fn every_answer_names_its_instance_and_keeps_a_handlers_own_headers() {
        let plain = through_every_request(false, get_request("/echo", &[])).await;
        assert_eq!(plain.headers()["x-tokenlab-instance"], "lab-1");
        assert_eq!(plain.headers()["referrer-policy"], "same-origin");
        assert_eq!(plain.headers()["x-content-type-options"], "nosniff");

        let own = through_every_request(false, get_request("/own", &[])).await;
        assert_eq!(own.headers()["referrer-policy"], "no-referrer", "the handler's own kept");
        assert_eq!(own.headers()["x-content-type-options"], "own");
        assert_eq!(own.headers()["x-request-id"], "the-handlers-own");
        for name in ["referrer-policy", "x-content-type-options", "x-request-id"] {
            assert_eq!(own.headers().get_all(name).iter().count(), 1, "{name}");
        }
        assert_eq!(own.headers()["x-tokenlab-instance"], "lab-1");
    }

    #[tokio::test]
    async fn what_a_handler_logs_names_its_request() {
        let (subscriber, written) = capturing(PlainFields);
        let _default = tracing::subscriber::set_default(subscriber);
        let response = through_every_request(false, get_request("/logs", &[])).await;
        let ours = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let log = text(&written);
        for message in ["before the handler's future", "inside the handler"] {
            let line = log.lines().find(|l| l.contains(message)).unwrap_or_default();
            assert!(line.contains(&format!("request_id=\"{ours}\"")), "{message}: {log}");
            assert!(line.contains("method=GET path=/logs"), "{message}: {line}");
        }

        // A client's own id under the name the server keeps it by is logged too.
        let theirs = [("x-client-request-id", "sent-as-theirs")];
        through_every_request(false, get_request("/logs", &theirs)).await;
        let log = text(&written);
        assert!(log.contains("client_request_id=\"sent-as-theirs\""), "{log}");
    }

    #[tokio::test]
    async fn cookie_names_are_reported_only_where_asked() {
        let cookies = [("cookie", "tl_session=secret; other=1")];
        let reported = through_every_request(true, get_request("/own", &cookies)).await;
        assert_eq!(reported.headers()["x-tokenlab-cookies"], "sent=tl_session,other; set=c");
        let silent = through_every_request(false, get_request("/own", &cookies)).await;
        assert!(silent.headers().get("x-tokenlab-cookies").is_none());
    }

    #[tokio::test]
    async fn a_server_error_is_logged_under_its_request_and_a_success_is_not() {
        let (subscriber, written) = capturing(PlainFields);
        let _default = tracing::subscriber::set_default(subscriber);
        for (path, status) in [("/timeout", 503), ("/fails", 500)] {
            let their_id = [("x-request-id", "client-7")];
            let response = through_every_request(false, get_request(path, &their_id)).await;
            assert_eq!(response.status().as_u16(), status);
            let ours = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            let log = text(&written);
            let line = log.lines().find(|l| l.contains(&ours)).unwrap_or_default();
            assert!(line.contains("ERROR"), "{path}: {log}");
            assert!(line.contains(&format!("method=GET path={path}")), "{path}: {line}");
            assert!(line.contains("client_request_id=\"client-7\""), "{path}: {line}");
            assert!(
                line.contains(&format!("response failed status={status} latency_ms=")),
                "{line}"
            );
        }
        let before = text(&written);
        let ok = through_every_request(false, get_request("/echo", &[])).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(text(&written), before, "nothing logged for a success");
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_fields_write_what_default_fields_write_for_ordinary_values() {
        let events: [(&str, fn()); 7] = [
            ("message only", || tracing::info!("session store unavailable")),
            ("an error with causes", || {
                let error = anyhow::anyhow!("connection refused").context("reading the session");
                let error: &(dyn std::error::Error + 'static) = error.as_ref();
                tracing::error!(error, "load");
            }),
            ("message and fields", || tracing::warn!(user = 7, name = "alice", ok = true, "x y")),
            ("a displayed field", || tracing::error!(error = %"disk full", "save failed")),
            ("no message", || tracing::info!(count = 2_u64)),
            ("an empty message", || tracing::info!(count = 2_u64, "")),
            ("strings Debug escapes", || tracing::info!(agent = "say \"hi\" \\ café", "x")),
        ];
        for (what, event) in events {
            let plain = logged(PlainFields, event);
            let default = logged(tracing_subscriber::fmt::format::DefaultFields::new(), event);
            assert!(plain.contains("request{method=GET"), "{what}: {plain}");
            assert_eq!(plain, default, "{what}");
        }
    }

    #[test]
    fn control_characters_in_values_are_escaped() {
        let cases: [(&str, fn(), &str); 3] = [
            (
                "a forged second line in the message",
                || tracing::info!("login failed for bob\nINFO admin logged in"),
                r"login failed for bob\nINFO admin logged in",
            ),
            (
                "a terminal escape in a displayed field",
                || tracing::info!(agent = %"curl\u{1b}[2J", "hello"),
                r"agent=curl\u{1b}[2J",
            ),
            ("a C1 control in the message", || tracing::info!("a\u{9b}b"), r"a\u{9b}b"),
        ];
        for (what, event, expected) in cases {
            let line = logged(PlainFields, event);
            assert!(line.contains(expected), "{what}: {line:?}");
            assert_eq!(line.trim_end_matches('\n').lines().count(), 1, "{what}: {line:?}");
            assert!(!line.contains('\u{1b}') && !line.contains('\u{9b}'), "{what}: {line:?}");
        }
    }

    #[test]
    fn names_only() {
        let cases = [
            ("tl_session=abc; tl_device=def", "tl_session,tl_device"),
            ("", ""),
            ("novalue", ""),
            (" a=1 ;b=2=3", "a,b"),
        ];
        for (header, expected) in cases {
            let parsed = Cookie::split_parse(header).filter_map(Result::ok);
            assert_eq!(cookie_names(parsed), expected, "{header:?}");
        }
    }
}
