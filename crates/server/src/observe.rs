//! Request ids, tracing and its log fields, and the cookie-name header the lab's timeline shows.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::cookie::Cookie;
use std::fmt::{self, Write as _};
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

/// Moves an incoming `X-Request-Id` to `X-Client-Request-Id`, so the server always generates its
/// own id. A plain request mapping (`ServiceBuilder::map_request`): nothing to await, so nothing
/// to clone.
pub fn set_aside_client_request_id(mut request: Request) -> Request {
    // By its `HeaderName`: a name given as text is parsed on every request, a few hundred
    // instructions of the cheapest one (#14).
    if let Some(theirs) = request.headers_mut().remove(&REQUEST_ID) {
        request.headers_mut().insert(CLIENT_REQUEST_ID.clone(), theirs);
    }
    request
}

/// Adds [`COOKIE_NAMES_HEADER`]: the request's names are read before the next service runs, the
/// response's after. An [`Around`](crate::middleware::Around) middleware.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportCookieNames;

impl crate::middleware::Around for ReportCookieNames {
    fn around<S: crate::middleware::NextService>(
        &self,
        request: Request,
        next: crate::middleware::Next<'_, S>,
    ) -> crate::middleware::Answer {
        let sent = cookie_names(
            request
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(Cookie::split_parse)
                .filter_map(Result::ok),
        );
        let answer = next.run(request);
        Box::pin(async move {
            let mut response = answer.await;
            report_cookie_names(sent, &mut response);
            response
        })
    }
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
    use super::{Cookie, PlainFields, cookie_names};
    use std::sync::{Arc, Mutex};

    /// What a subscriber formatting fields with `fields` writes for one event in a request span.
    fn logged<F>(fields: F, event: impl FnOnce()) -> String
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
        let bytes = written.lock().map(|w| w.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
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
