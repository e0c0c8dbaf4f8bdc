//! Request ids, tracing, and the cookie-name header the lab's timeline shows.

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

/// Adds [`COOKIE_NAMES_HEADER`]: the request's names are read before the next service runs, the
/// response's after. An [`Around`](crate::middleware::Around) middleware.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportCookieNames;

impl crate::middleware::Around for ReportCookieNames {
    fn around(
        &self,
        request: Request,
        next: crate::middleware::Next<'_>,
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
