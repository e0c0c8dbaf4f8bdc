//! The pages' Content-Security-Policy (ADR 0024): every HTML page sends one; every inline script a
//! page serves runs because the policy lists its hash, and the policy lists nothing else inline;
//! no `'unsafe-inline'`. The browser tests (`e2e/tests/csp.spec.ts`) check that the app hydrates
//! and the attack lab's frame posts under it; these check the bytes the server sends.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use crate::helpers::{Backend, TestApp, production, spawn_app, spawn_app_with};

/// Every kind of HTML page: the lab's three, its not-found page, and Swagger UI.
const LAB_PAGES: &[(&str, StatusCode)] = &[
    ("/", StatusCode::OK),
    ("/walkthrough", StatusCode::OK),
    ("/attacks", StatusCode::OK),
    ("/no/such/page", StatusCode::NOT_FOUND),
];
const DOCS_PAGE: &str = "/api/docs";

type Policy = BTreeMap<String, Vec<String>>;

fn parse_policy(header: &str) -> Policy {
    let mut policy = Policy::new();
    for directive in header.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let mut words = directive.split_ascii_whitespace();
        let name = words.next().unwrap().to_ascii_lowercase();
        assert!(!policy.contains_key(&name), "{name} twice in {header}");
        policy.insert(name, words.map(str::to_owned).collect());
    }
    policy
}

/// `'sha256-…'` of a script's text, computed here, not by the server's code.
fn sha256_source(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The text of every `<script>` without a `src` attribute, as the HTML tokenizer splits it: the
/// start tag ends at the first `>` outside a quoted attribute value; the text ends at `</script`.
fn inline_scripts(html: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let chars: Vec<char> = html.chars().collect();
    let lower: String = html.to_lowercase();
    let lower: Vec<char> = lower.chars().collect();
    assert_eq!(chars.len(), lower.len(), "lowercasing kept every character");
    let starts_with = |at: usize, word: &str| {
        word.chars().enumerate().all(|(i, c)| lower.get(at + i) == Some(&c))
    };
    let mut i = 0;
    while i < chars.len() {
        if starts_with(i, "<!--") {
            i += 4;
            while i < chars.len() && !starts_with(i, "-->") {
                i += 1;
            }
            i += 3;
            continue;
        }
        let opens_script = starts_with(i, "<script")
            && lower.get(i + 7).is_some_and(|c| c.is_whitespace() || *c == '>' || *c == '/');
        if !opens_script {
            i += 1;
            continue;
        }
        i += 7;
        let mut tag = String::new();
        let mut quote = None;
        while i < chars.len() {
            let c = lower[i];
            i += 1;
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '>' => break,
                None => {}
            }
            // Attribute values are blanked, so only names remain to look at.
            tag.push(if quote.is_some() { ' ' } else { c });
        }
        let has_src = tag
            .split(|c: char| c.is_whitespace() || c == '/' || c == '=' || c == '>')
            .any(|word| word == "src");
        let start = i;
        while i < chars.len() && !starts_with(i, "</script") {
            i += 1;
        }
        if !has_src {
            scripts.push(chars[start..i].iter().collect());
        }
    }
    scripts
}

#[test]
fn the_tests_parser_reads_scripts_as_a_browser_does() {
    let html = r#"<SCRIPT type="module" data-x='a>b'>one()</script><script src=x.js></script>
<!-- <script>commented()</script> --><scripts>no</scripts><script nonce="n">two()</Script>"#;
    assert_eq!(inline_scripts(html), ["one()", "two()"]);
}

/// A page's policy, after the checks every page's policy passes.
async fn page_policy(app: &TestApp, path: &str, status: StatusCode) -> (Policy, String) {
    let response = app.get(path).await;
    assert_eq!(response.status(), status, "{path}");
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    let header = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{path} has no policy"))
        .to_str()
        .unwrap();
    let policy = parse_policy(header);
    let sources = |name: &str| policy.get(name).unwrap_or_else(|| panic!("{path}: no {name}"));
    assert_eq!(sources("default-src"), &["'self'"], "{path}");
    assert_eq!(sources("object-src"), &["'none'"], "{path}");
    assert_eq!(sources("base-uri"), &["'none'"], "{path}");
    assert_eq!(sources("frame-ancestors"), &["'self'"], "{path}");
    let form_action = sources("form-action");
    assert!(*form_action == ["'self'"] || *form_action == ["'none'"], "{path}: {form_action:?}");
    let script_src = sources("script-src");
    assert_eq!(script_src[0], "'self'", "{path}");
    for source in script_src {
        // Nothing inline wholesale, no eval of strings, no other origin or scheme.
        assert!(
            source == "'self'" || source == "'wasm-unsafe-eval'" || source.starts_with("'sha256-"),
            "{path}: script-src {source}"
        );
    }
    (policy, html)
}

async fn every_page_runs_only_the_inline_scripts_its_policy_lists(app: &TestApp) {
    let attacker = inline_scripts(&tokenlab_web::attacker_page(&app.base));
    assert_eq!(attacker.len(), 1, "the attacker's page has one script");
    let attacker: BTreeSet<String> = attacker.iter().map(|s| sha256_source(s)).collect();
    for (path, status) in LAB_PAGES {
        let (policy, html) = page_policy(app, path, *status).await;
        assert!(policy["script-src"].contains(&"'wasm-unsafe-eval'".to_owned()), "{path}");
        let served: BTreeSet<String> =
            inline_scripts(&html).iter().map(|s| sha256_source(s)).collect();
        assert!(
            inline_scripts(&html)
                .iter()
                .any(|s| s.contains("tokenlab_bg") && s.contains("hydrate")),
            "{path}: no hydration script found in {html}"
        );
        let listed: BTreeSet<String> =
            policy["script-src"].iter().filter(|s| s.starts_with("'sha256-")).cloned().collect();
        // Every inline script served, and the attacker frame's (which inherits this policy, and
        // which the lab's router can reach from any page): those, and nothing else.
        let expected: BTreeSet<String> = served.union(&attacker).cloned().collect();
        assert_eq!(listed, expected, "{path}");
    }

    let (policy, html) = page_policy(app, DOCS_PAGE, StatusCode::OK).await;
    assert!(inline_scripts(&html).is_empty(), "Swagger UI's set-up is a file: {html}");
    assert_eq!(policy["script-src"], ["'self'"]);
    assert_eq!(policy["img-src"], ["'self'", "data:"], "Swagger UI's icons");
    assert!(html.contains(r#"<script src="/api-docs/init.js"></script>"#));
}

#[tokio::test]
async fn every_page_runs_only_the_inline_scripts_its_policy_lists_in_the_demo() {
    let app = spawn_app(Backend::Sqlite).await;
    every_page_runs_only_the_inline_scripts_its_policy_lists(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn every_page_runs_only_the_inline_scripts_its_policy_lists_in_production() {
    let app = spawn_app_with(Backend::Sqlite, production).await;
    every_page_runs_only_the_inline_scripts_its_policy_lists(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn the_files_beside_the_pages_carry_the_policy_too() {
    // An SVG opened on its own is a document, which could run script.
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>")
        .unwrap();
    let root = site.path().to_owned();
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.site_root = root).await;
    let file = app.get("/favicon.svg").await;
    assert_eq!(file.status(), StatusCode::OK);
    assert!(file.headers()["content-type"].to_str().unwrap().starts_with("image/svg+xml"));
    let policy = parse_policy(file.headers()["content-security-policy"].to_str().unwrap());
    assert_eq!(policy["default-src"], ["'self'"]);
    assert_eq!(policy["object-src"], ["'none'"]);
    app.stop().await;
}
