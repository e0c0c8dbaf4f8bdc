//! The OpenAPI document against the server that serves it, in both profiles.
//!
//! A schema-driven client trusts the document: a status it does not list, or a refusal in another
//! shape, is a bug to it. So the route table is walked from the served document itself, and every
//! operation under `/api` is sent what any operation can cheaply be refused for — a method its path
//! does not take, a path under it that does not exist, a request from another site, no
//! credentials, a body over the limit, a path parameter that does not parse, and for a JSON body:
//! another content type, broken JSON, the wrong shape. Every refusal must be `{reason, message}`
//! with a reason from `tokenlab_core::reason`'s table, under a status the operation documents, and
//! that reason must be one of those documented for it. (A path nothing routes and a method a path
//! does not take are no operation's: they must answer the router's own `not_found` and
//! `method_not_allowed`, and `Allow` must list the methods the document lists.) The document's own
//! refusals are checked too: every one is the error body, and every reason it names is in the
//! table, under its status.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header::{ALLOW, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokenlab_core::Reason;

use crate::helpers::{Backend, TestApp, production, spawn_app, spawn_app_with};

/// One byte more is refused, whatever the operation.
const BODY_LIMIT: usize = tokenlab_server::serve::MAX_BODY_BYTES;

/// What an operation of the document needs to be called.
struct Operation {
    method: Method,
    /// As documented, with `{name}` for each path parameter.
    path: String,
    spec: Value,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path with each parameter replaced by `value(its name, its schema)`.
    fn path_with(&self, value: impl Fn(&str, &Value) -> String) -> String {
        let mut path = self.path.clone();
        for parameter in self.parameters("path") {
            let name = parameter["name"].as_str().unwrap();
            path = path.replace(&format!("{{{name}}}"), &value(name, &parameter["schema"]));
        }
        path
    }

    /// The path with values of the right type: the route matches, whatever the handler decides.
    fn routed_path(&self) -> String {
        self.path_with(|_, schema| routed_value(schema))
    }

    fn parameters(&self, location: &str) -> impl Iterator<Item = &Value> {
        self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(move |p| p["in"] == location)
    }

    /// The content types its request body is documented in.
    fn body_types(&self) -> BTreeSet<String> {
        let content = self.spec["requestBody"]["content"].as_object();
        content.into_iter().flat_map(|c| c.keys().cloned()).collect()
    }

    fn takes_only_json(&self) -> bool {
        self.body_types() == BTreeSet::from(["application/json".to_owned()])
    }

    /// Every alternative names a scheme: the operation needs a sign-in.
    fn needs_sign_in(&self) -> bool {
        self.spec["security"].as_array().is_some_and(|alternatives| {
            !alternatives.is_empty()
                && alternatives.iter().all(|a| a.as_object().is_some_and(|a| !a.is_empty()))
        })
    }

    fn accepts_scheme(&self, scheme: &str) -> bool {
        self.spec["security"].as_array().into_iter().flatten().any(|a| a.get(scheme).is_some())
    }

    /// What the cross-site guard looks at.
    fn changes_state(&self) -> bool {
        !self.method.is_safe()
    }
}

/// A value of the parameter's type.
fn routed_value(schema: &Value) -> String {
    match schema["type"].as_str() {
        Some("integer") => schema["minimum"].as_i64().unwrap_or(1).to_string(),
        _ => "x".to_owned(),
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, spec) in item.as_object().expect("path item") {
            let method = method.to_uppercase().parse().expect("an HTTP method");
            found.push(Operation { method, path: path.clone(), spec: spec.clone() });
        }
    }
    found
}

/// Whether any documented path template matches `path`.
fn documented(doc: &Value, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object().expect("paths").keys().any(|template| {
        let pattern: Vec<&str> = template.split('/').collect();
        pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(p, s)| p == s || p.starts_with('{'))
    })
}

/// The reasons a documented error response lists, and the schemas of its bodies.
fn documented_refusal(response: &Value) -> (BTreeSet<String>, Vec<String>) {
    let schema = &response["content"]["application/json"]["schema"];
    let alternatives = match schema["anyOf"].as_array() {
        Some(each) => each.clone(),
        None => vec![schema.clone()],
    };
    let (mut reasons, mut bodies) = (BTreeSet::new(), Vec::new());
    for alternative in alternatives {
        match alternative["allOf"].as_array() {
            Some(parts) => {
                let [body, narrowed] = parts.as_slice() else { panic!("{alternative}") };
                bodies.push(body["$ref"].as_str().unwrap_or_default().to_owned());
                let listed = narrowed["properties"]["reason"]["enum"].as_array();
                reasons
                    .extend(listed.into_iter().flatten().map(|r| r.as_str().unwrap().to_owned()));
            }
            None => bodies.push(alternative["$ref"].as_str().unwrap_or_default().to_owned()),
        }
    }
    (reasons, bodies)
}

/// What `pick` finds in `schema` and in the parts of its `allOf`.
fn collect(schema: &Value, pick: &dyn Fn(&Value) -> Option<Vec<Value>>) -> Vec<Value> {
    let mut found = pick(schema).unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        found.extend(collect(part, pick));
    }
    found
}

/// The words in backticks that look like reason codes.
fn codes_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            word.contains('_') && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

const ERROR_BODY: &str = "#/components/schemas/ErrorBody";
const OAUTH_ERROR_BODY: &str = "#/components/schemas/OAuthErrorBody";

/// Every documented 4xx and 5xx is the error body (or RFC 6749's, which carries the same
/// `reason` and `message`), and every reason it names is in the table; in the error body, under
/// the status the table gives it.
fn check_the_documents_refusals(doc: &Value) {
    let schemas = &doc["components"]["schemas"];
    for body in ["ErrorBody", "OAuthErrorBody"] {
        let required = collect(&schemas[body], &|s| s["required"].as_array().cloned());
        let required: BTreeSet<&str> = required.iter().filter_map(Value::as_str).collect();
        assert!(
            required.is_superset(&BTreeSet::from(["reason", "message"])),
            "{body}: {required:?}"
        );
    }
    let listed =
        collect(&schemas["ErrorBody"], &|s| s["properties"]["reason"]["enum"].as_array().cloned());
    let listed: BTreeSet<&str> = listed.iter().filter_map(Value::as_str).collect();
    let table: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(listed, table, "ErrorBody's reason is one of the table's, every one of them");

    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for op in operations(doc) {
        for alternative in op.spec["security"].as_array().into_iter().flatten() {
            for scheme in alternative.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "{}: unknown scheme {scheme}", op.name());
            }
        }
        for (status, response) in op.spec["responses"].as_object().expect("responses") {
            let status: u16 = status.parse().expect("a numeric status");
            if status < 400 {
                continue;
            }
            let what = format!("{} {status}", op.name());
            let (listed, bodies) = documented_refusal(response);
            assert!(!bodies.is_empty(), "{what}: no body");
            for body in &bodies {
                assert!([ERROR_BODY, OAUTH_ERROR_BODY].contains(&body.as_str()), "{what}: {body}");
            }
            let described = codes_in(response["description"].as_str().unwrap_or_default());
            assert!(described.is_subset(&listed) || listed.is_empty(), "{what}: {described:?}");
            for code in listed.iter().chain(&described) {
                let reason = Reason::from_code(code).unwrap_or_else(|| panic!("{what}: {code}"));
                // RFC 6749 §5.2 answers a refused grant 400, whatever the reason's own status.
                let oauth = bodies.iter().any(|b| b == OAUTH_ERROR_BODY) && status == 400;
                assert!(reason.status() == status || oauth, "{what}: {code}");
            }
        }
    }
}

/// Asserts `response` is a refusal in the one error shape with a reason from the table; returns
/// its status, headers and reason.
async fn refusal(what: &str, response: Response) -> (StatusCode, HeaderMap, Reason) {
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("application/json"), "{what}: {content_type:?} {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    let code = body["reason"].as_str().unwrap_or_else(|| panic!("{what}: no reason: {body}"));
    let reason =
        Reason::from_code(code).unwrap_or_else(|| panic!("{what}: {code} not in the table"));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: no message: {body}");
    (status, headers, reason)
}

/// Asserts `response` is one `op` documents: its status listed, and a refusal in the one error
/// shape, with a reason from the table that is listed under that status. Returns the status, the
/// headers and, for a refusal, its reason.
async fn documented_answer(
    op: &Operation,
    provoked: &str,
    response: Response,
) -> (StatusCode, HeaderMap, Option<Reason>) {
    let what = format!("{} ({provoked})", op.name());
    let status = response.status();
    let documented = &op.spec["responses"][status.as_str()];
    if status.as_u16() < 400 {
        assert!(documented.is_object(), "{what}: {status} is not documented");
        return (status, response.headers().clone(), None);
    }
    let (status, headers, reason) = refusal(&what, response).await;
    assert!(documented.is_object(), "{what}: {status} ({reason}) is not documented");
    let (listed, _) = documented_refusal(documented);
    assert!(listed.contains(reason.code()), "{what}: {status} lists {listed:?}, not {reason}");
    (status, headers, Some(reason))
}

/// Asserts the refusal is exactly `reason`, with its status.
fn refused_with(answer: &(StatusCode, HeaderMap, Option<Reason>), reason: Reason, what: &str) {
    assert_eq!(answer.2, Some(reason), "{what}");
    assert_eq!(answer.0.as_u16(), reason.status(), "{what}");
}

/// The session-id scheme's cookie, under the name the document gives it: the one sign-in the
/// walk holds (the device scheme's headers rotate their token when sent without their cookie).
async fn sign_in(app: &TestApp, doc: &Value) -> String {
    let cookie = doc["components"]["securitySchemes"]["session_cookie"]["name"].as_str().unwrap();
    let user = app.register_user().await;
    let body = json!({"username": user.username, "password": user.password});
    let response = reqwest::Client::new()
        .post(app.url("/api/session/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "session login");
    let value = crate::helpers::set_cookie(&response, cookie).expect("the documented cookie");
    format!("{cookie}={value}")
}

/// Walks every operation under `/api` of `app`'s document.
async fn walk(app: &TestApp) {
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    check_the_documents_refusals(&doc);
    let session = sign_in(app, &doc).await;
    let client = reqwest::Client::new();
    let ops = operations(&doc);
    let mut methods_of: BTreeMap<&str, BTreeSet<Method>> = BTreeMap::new();
    for op in &ops {
        methods_of.entry(&op.path).or_default().insert(op.method.clone());
    }
    let mut provoked: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.path.starts_with("/api/")) {
        let path = op.routed_path();
        let send = |method: Method, path: &str| client.request(method, app.url(path));
        // A request the operation accepts as far as sign-in goes, when the walk holds one of the
        // sign-ins it takes.
        let signed_in = |request: RequestBuilder| {
            if op.accepts_scheme("session_cookie") {
                request.header("cookie", session.as_str())
            } else {
                request
            }
        };

        // A path below this one that no operation has: the router's own 404.
        let unknown = format!("{path}/no/such-endpoint");
        assert!(!documented(&doc, &unknown), "{unknown} is documented");
        let (status, _, reason) =
            refusal(&unknown, send(op.method.clone(), &unknown).send().await.unwrap()).await;
        assert_eq!((status, reason), (StatusCode::NOT_FOUND, Reason::NotFound), "{unknown}");
        *provoked.entry("unknown path").or_default() += 1;

        // A method the path does not take: 405, whose `Allow` lists what the document lists.
        let taken = &methods_of[op.path.as_str()];
        let other = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH]
            .into_iter()
            .find(|m| !taken.contains(m))
            .expect("a method the path does not take");
        let what = format!("{other} {path}");
        let (status, headers, reason) =
            refusal(&what, send(other.clone(), &path).send().await.unwrap()).await;
        assert_eq!((status, reason), (StatusCode::METHOD_NOT_ALLOWED, Reason::MethodNotAllowed));
        let allow: BTreeSet<Method> = headers[ALLOW]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().parse().unwrap())
            .filter(|m| *m != Method::HEAD)
            .collect();
        assert_eq!(&allow, taken, "{what}: Allow");
        *provoked.entry("method not allowed").or_default() += 1;

        if op.changes_state() {
            let request =
                send(op.method.clone(), &path).header("origin", "https://attacker.example");
            let answer =
                documented_answer(op, "from another site", request.send().await.unwrap()).await;
            refused_with(&answer, Reason::CrossSiteRequest, &op.name());
            *provoked.entry("cross-site").or_default() += 1;
        }

        if op.needs_sign_in() {
            let request = send(op.method.clone(), &path);
            let request =
                if op.body_types().is_empty() { request } else { request.json(&json!({})) };
            let answer = documented_answer(op, "no sign-in", request.send().await.unwrap()).await;
            assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{}: without a sign-in", op.name());
            *provoked.entry("no sign-in").or_default() += 1;
        }

        // Every body is read before routing goes any further, whatever the handler takes.
        let request = signed_in(send(op.method.clone(), &path))
            .header(CONTENT_TYPE, "application/json")
            .body(vec![b' '; BODY_LIMIT + 1]);
        let answer = documented_answer(op, "too many bytes", request.send().await.unwrap()).await;
        refused_with(&answer, Reason::PayloadTooLarge, &format!("{}: too many bytes", op.name()));
        *provoked.entry("too many bytes").or_default() += 1;

        for parameter in op.parameters("path") {
            let name = parameter["name"].as_str().unwrap();
            let unparsable = match parameter["schema"]["type"].as_str() {
                Some("integer") => "not-a-number",
                // Percent-encoded bytes that are not UTF-8.
                _ => "%FF%FE",
            };
            let bad = op.path_with(|other, schema| {
                if other == name { unparsable.to_owned() } else { routed_value(schema) }
            });
            let answer = documented_answer(
                op,
                &format!("{name} does not parse"),
                signed_in(send(op.method.clone(), &bad)).send().await.unwrap(),
            )
            .await;
            refused_with(&answer, Reason::BadRequest, &format!("{} {bad}", op.name()));
            *provoked.entry("unparsable path parameter").or_default() += 1;
        }

        if op.body_types().contains("application/json") {
            let only_json = op.takes_only_json();
            let bodies: [(&str, &str, &[u8], Reason); 3] = [
                ("text/plain", "another content type", b"{}", Reason::UnsupportedMediaType),
                ("application/json", "broken JSON", b"{]", Reason::InvalidJson),
                ("application/json", "the wrong shape", b"[]", Reason::InvalidBody),
            ];
            for (content_type, what, body, reason) in bodies {
                let request = signed_in(send(op.method.clone(), &path))
                    .header(CONTENT_TYPE, content_type)
                    .body(body.to_vec());
                let answer = documented_answer(op, what, request.send().await.unwrap()).await;
                // A body also accepted as a form (RFC 6749) answers in that standard's terms; its
                // status and reason are still the documented ones.
                if only_json {
                    refused_with(&answer, reason, &format!("{}: {what}", op.name()));
                }
                *provoked.entry(what).or_default() += 1;
            }
        }
    }
    // The walk reached every kind of refusal it knows how to provoke.
    for kind in [
        "unknown path",
        "method not allowed",
        "cross-site",
        "no sign-in",
        "unparsable path parameter",
        "another content type",
        "broken JSON",
        "the wrong shape",
        "too many bytes",
    ] {
        assert!(provoked.get(kind).is_some_and(|n| *n > 0), "never provoked: {kind}");
    }
}

#[tokio::test]
async fn every_operation_of_the_demo_answers_its_refusals_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    walk(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn every_operation_of_production_answers_its_refusals_as_documented() {
    let app = spawn_app_with(Backend::Sqlite, production).await;
    walk(&app).await;
    app.stop().await;
}

/// What Schemathesis (`just fuzz-api`) found the document and the server disagreeing on, stated in
/// the document now: the token endpoint takes one of two grants, each with what it needs (a grant
/// without them is refused, so the document must not call it valid), and a revocation takes any
/// body, or none.
#[tokio::test]
async fn the_token_and_revoke_bodies_are_documented_as_the_server_reads_them() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let token = &doc["paths"]["/api/oauth/token"]["post"]["requestBody"]["content"];
    let schema = &doc["components"]["schemas"]["TokenRequest"];
    for media in ["application/json", "application/x-www-form-urlencoded"] {
        assert_eq!(token[media]["schema"]["$ref"], "#/components/schemas/TokenRequest");
    }
    let grants: BTreeMap<String, Vec<String>> = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|grant| {
            let name = grant["properties"]["grant_type"]["enum"][0].as_str().unwrap().to_owned();
            let required = grant["required"].as_array().unwrap();
            (name, required.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
        })
        .collect();
    assert_eq!(grants["password"], ["grant_type", "username", "password"]);
    assert_eq!(grants["refresh_token"], ["grant_type", "refresh_token"]);

    let revoke = &doc["paths"]["/api/oauth/revoke"]["post"]["requestBody"];
    assert_eq!(revoke["required"], false, "{revoke}");
    let any = &doc["components"]["schemas"]["RevokeRequest"];
    assert!(any.get("type").is_none() && any.get("properties").is_none(), "{any}");
    for body in [None, Some("AAA"), Some("token=never-issued")] {
        let mut request = reqwest::Client::new()
            .post(app.url("/api/oauth/revoke"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(body) = body {
            request = request.body(body);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::OK, "{body:?}");
    }
    app.stop().await;
}
