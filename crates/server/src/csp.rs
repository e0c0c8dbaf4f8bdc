//! The Content-Security-Policy of the HTML pages (ADR 0024).
//!
//! Scripts come from this origin, the wasm may be compiled (`'wasm-unsafe-eval'`), and an inline
//! script runs only if its SHA-256 is listed. The lab pages' inline scripts are leptos's: the
//! module script of `<HydrationScripts>` that loads the wasm, and the two scripts the server
//! streams after the body (`__RESOLVED_RESOURCES=…`, `__INCOMPLETE_CHUNKS=…`). They are the same
//! bytes on every request: they depend only on the build's options, and no page renders a server
//! resource, whose data would vary. So the policy lists their hashes rather than a per-request
//! nonce: a nonce would have to come from somewhere per response and be threaded through
//! rendering, and the attack lab's frame, written by the wasm long after the response, could not
//! carry it. The hashes are learned by rendering the pages themselves once, when the router is
//! built: nothing here spells out what leptos emits, so an upgrade that changes those scripts
//! changes their hashes with them. Should a page ever stream per-request data in a script, the
//! API test that checks every served inline script against the served policy fails, and the way
//! on is a nonce (leptos already stamps one on its scripts; ours would come from `SecretSource`).
//!
//! The one other inline script is the attack lab's cross-site page's
//! ([`tokenlab_web::ATTACKER_SCRIPT`]): its sandboxed `srcdoc` frame inherits the page's policy,
//! and the lab's router can reach `/attacks` from any page without a reload, so every page lists
//! it (why that is harmless is written next to the script).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

/// The lab's pages, given the hash sources of the inline scripts they may run. `form-action`
/// allows this origin because the attacker's frame posts its form here (and the pages' own forms
/// are handled by the wasm); `img-src`, `connect-src` and frames fall back to `default-src`.
pub fn lab_policy<'a>(script_hashes: impl IntoIterator<Item = &'a str>) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for hash in script_hashes {
        script_src.push(' ');
        script_src.push_str(hash);
    }
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )
}

/// The Swagger UI page (`/api/docs`): no inline script at all (its set-up is `init.js`), and
/// `data:` images, which Swagger UI's stylesheet uses for its icons. Its forms are all handled
/// by script, so none may be submitted.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'self'";

/// A CSP hash source for a script's text, as browsers compute it: SHA-256 of its UTF-8 bytes.
pub fn script_hash(script: &str) -> String {
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(script.as_bytes())))
}

/// Sends the lab pages' policy with every response of `site` (the pages, the not-found page, and
/// the files beside them: an SVG opened on its own is a document too), unless it set one itself.
/// The policy is learned from `site` itself, starting now, so that the first visitor rarely waits.
pub fn protect(site: Router) -> Router {
    let pages = Pages { site: site.clone(), policy: Arc::default() };
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let pages = pages.clone();
        runtime.spawn(async move {
            pages.policy().await;
        });
    }
    site.layer(axum::middleware::from_fn_with_state(pages, set_policy))
}

async fn set_policy(State(pages): State<Pages>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let policy = pages.policy().await.clone();
    response.headers_mut().entry(header::CONTENT_SECURITY_POLICY).or_insert(policy);
    response
}

/// A path no page and no file answers: the not-found page is a page too.
const NOT_FOUND_PROBE: &str = "/.well-known/tokenlab/no-such-page";

#[derive(Clone)]
struct Pages {
    /// The site without this layer, so that learning does not wait for itself.
    site: Router,
    policy: Arc<OnceCell<HeaderValue>>,
}

impl Pages {
    async fn policy(&self) -> &HeaderValue {
        self.policy.get_or_init(|| self.learn()).await
    }

    /// Renders every page without a parameter, and the not-found page, and lists the hashes of
    /// every inline script they hold. A page that cannot be rendered here is logged and adds no
    /// hash: its scripts are then refused, which breaks hydration rather than the policy.
    async fn learn(&self) -> HeaderValue {
        let mut paths: Vec<String> = leptos_axum::generate_route_list(tokenlab_web::App)
            .iter()
            .map(|route| route.path().to_owned())
            .filter(|path| !path.contains([':', '*']))
            .collect();
        paths.push(NOT_FOUND_PROBE.to_owned());
        let mut hashes = BTreeSet::from([script_hash(tokenlab_web::ATTACKER_SCRIPT)]);
        for path in paths {
            match self.render(&path).await {
                Ok(html) => hashes.extend(inline_scripts(&html).into_iter().map(script_hash)),
                Err(problem) => tracing::error!(
                    path,
                    problem,
                    "could not render a page to learn its inline scripts; they will be refused"
                ),
            }
        }
        let policy = lab_policy(hashes.iter().map(String::as_str));
        tracing::debug!(policy, "the pages' Content-Security-Policy");
        // Base64 and fixed ASCII only: always a valid header value.
        HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static(STRICTEST))
    }

    async fn render(&self, path: &str) -> Result<String, String> {
        let request = Request::get(path)
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .map_err(|err| err.to_string())?;
        let mut site = self.site.clone();
        // A router is always ready and never fails: its error type is `Infallible`.
        std::future::poll_fn(|cx| tower::Service::<Request>::poll_ready(&mut site, cx))
            .await
            .map_err(|never| -> String { match never {} })?;
        let response = tower::Service::<Request>::call(&mut site, request)
            .await
            .map_err(|never| -> String { match never {} })?;
        let expected = if path == NOT_FOUND_PROBE { StatusCode::NOT_FOUND } else { StatusCode::OK };
        if response.status() != expected {
            return Err(format!("answered {}, not {expected}", response.status()));
        }
        let html = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !html.is_some_and(|v| v.starts_with("text/html")) {
            return Err(format!("answered {html:?}, not HTML"));
        }
        let body = response.into_body().collect().await.map_err(|err| err.to_string())?;
        String::from_utf8(body.to_bytes().to_vec()).map_err(|err| err.to_string())
    }
}

/// What a page whose policy could not be written gets: nothing runs, nothing loads.
const STRICTEST: &str = "default-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The text of every `<script>` element without `src` in `html`, as the HTML tokenizer reads it:
/// tag names in any case, attribute values quoted or not, the text up to the first `</script`,
/// comments skipped.
pub fn inline_scripts(html: &str) -> Vec<&str> {
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` cut `html`.
    let lower = html.to_ascii_lowercase();
    let mut scripts = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find('<') {
        let open = at + found;
        let rest = &lower[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            at = comment.find("-->").map_or(lower.len(), |end| open + 4 + end + 3);
            continue;
        }
        let is_script = rest.starts_with("<script")
            && rest[7..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/');
        if !is_script {
            at = open + 1;
            continue;
        }
        let Some((attributes, body_start)) = start_tag(&lower, open + 7) else { break };
        let body_end = lower[body_start..].find("</script").map_or(lower.len(), |n| body_start + n);
        if !attributes.iter().any(|name| name == "src") {
            scripts.push(&html[body_start..body_end]);
        }
        at = body_end;
    }
    scripts
}

/// The attribute names of a start tag whose attributes begin at `from`, and where the tag ends.
fn start_tag(lower: &str, from: usize) -> Option<(Vec<String>, usize)> {
    let bytes = lower.as_bytes();
    let mut names = Vec::new();
    let mut i = from;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        match bytes.get(i)? {
            b'>' => return Some((names, i + 1)),
            _ => {
                let start = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !matches!(bytes[i], b'/' | b'>' | b'=')
                {
                    i += 1;
                }
                names.push(lower[start..i].to_owned());
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'=') {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    match bytes.get(i)? {
                        quote @ (b'"' | b'\'') => {
                            let close = lower[i + 1..].find(*quote as char)?;
                            i += 1 + close + 1;
                        }
                        _ => {
                            while i < bytes.len()
                                && !bytes[i].is_ascii_whitespace()
                                && bytes[i] != b'>'
                            {
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_inline_scripts_the_way_a_browser_parses_them() {
        let html = r#"<!DOCTYPE html><html><head>
<script src="/pkg/a.js"></script><SCRIPT type="module" nonce="x">go("a>b")</SCRIPT>
<script data-x='q>"' >one</script ><!-- <script>not run</script> -->
<scripts>not a script</scripts><script>two</script></head></html>"#;
        assert_eq!(inline_scripts(html), vec![r#"go("a>b")"#, "one", "two"]);
        assert_eq!(inline_scripts("<script>unterminated"), vec!["unterminated"]);
        assert!(inline_scripts("<script src=/x.js></script><p>no script</p>").is_empty());
    }

    #[test]
    fn hashes_as_the_csp_specification_does() {
        // The example of CSP Level 3, §2.3.1: `alert('Hello, world.');`.
        assert_eq!(
            script_hash("alert('Hello, world.');"),
            "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
        );
    }

    #[test]
    fn the_lab_policy_allows_what_hydration_needs_and_no_inline_script_unless_listed() {
        let policy = lab_policy(["'sha256-abc='"]);
        let script_src = policy.split("; ").find(|d| d.starts_with("script-src ")).unwrap_or("");
        assert_eq!(script_src, "script-src 'self' 'wasm-unsafe-eval' 'sha256-abc='");
        for directive in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'"] {
            assert!(policy.contains(directive), "{directive} in {policy}");
        }
        assert!(!policy.contains("unsafe-inline") && !DOCS_POLICY.contains("unsafe"));
    }
}
