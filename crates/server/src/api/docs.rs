//! The OpenAPI document and a browsable view of it.
//!
//! The view is Swagger UI from the `swagger-ui-dist` npm package, copied into the site root by the
//! build (`just site`), so the docs page works without any network beyond this server.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

pub fn router(openapi: utoipa::openapi::OpenApi) -> Router {
    let json: Arc<str> = match openapi.to_pretty_json() {
        Ok(json) => json.into(),
        Err(err) => {
            tracing::error!(error = %err, "could not serialise the OpenAPI document");
            "{}".into()
        }
    };
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let json = Arc::clone(&json);
                async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
            }),
        )
        .route("/api/docs", get(docs_page))
}

async fn docs_page() -> impl IntoResponse {
    // Its own policy, not the lab pages': no inline script, and Swagger UI's `data:` icons.
    let policy = [(header::CONTENT_SECURITY_POLICY, crate::csp::DOCS_POLICY)];
    (
        policy,
        Html(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>tokenlab API</title>
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
  <noscript>The raw document is at <a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="/api-docs/swagger-ui-bundle.js"></script>
  <script src="/api-docs/init.js"></script>
</body>
</html>"#,
        ),
    )
}
