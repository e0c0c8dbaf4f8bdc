//! Request ids, tracing, and the cookie-name header the lab's timeline shows.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum_extra::extract::cookie::Cookie;

/// `X-Tokenlab-Cookies: sent=a,b; set=c` (either part omitted when empty): which cookies
/// travelled, by name only.
///
/// The browser hides HttpOnly cookies from JavaScript (that is the point of HttpOnly), so without
/// this the request timeline could not show which session cookie a call carried or received.
/// Names are not secrets; values never appear.
pub static COOKIE_NAMES_HEADER: HeaderName = HeaderName::from_static("x-tokenlab-cookies");

/// Where a client's own `X-Request-Id` goes: it is logged beside ours, never as ours, so a client
/// cannot choose (or forge, or collide) the id under which the server logs its request.
pub static CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

/// Moves an incoming `X-Request-Id` to `X-Client-Request-Id`, so the server always generates its
/// own id. A plain request mapping (`ServiceBuilder::map_request`): nothing to await, so nothing
/// to clone.
pub fn set_aside_client_request_id(mut request: Request) -> Request {
    if let Some(theirs) = request.headers_mut().remove("x-request-id") {
        request.headers_mut().insert(CLIENT_REQUEST_ID.clone(), theirs);
    }
    request
}

/// The layer that adds [`COOKIE_NAMES_HEADER`]. A tower layer rather than
/// `axum::middleware::from_fn`, which clones the inner service (with everything under it) on
/// every request; the request's names are read before calling it, the response's after.
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieNamesLayer;

impl<S> tower::Layer<S> for CookieNamesLayer {
    type Service = ReportCookieNames<S>;

    fn layer(&self, inner: S) -> ReportCookieNames<S> {
        ReportCookieNames { inner }
    }
}

/// The service of [`CookieNamesLayer`].
#[derive(Debug, Clone)]
pub struct ReportCookieNames<S> {
    inner: S,
}

impl<S> tower::Service<Request> for ReportCookieNames<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let sent = cookie_names(
            request
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(Cookie::split_parse)
                .filter_map(Result::ok),
        );
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            report_cookie_names(sent, &mut response);
            Ok(response)
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

#[cfg(test)]
mod tests {
    use super::{Cookie, cookie_names};

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
