//! What each operation of the API can be refused with, as its OpenAPI responses.
//!
//! An operation names the reasons it can answer with (`refusals!`), mostly through the families
//! below: one per extractor, layer or engine that refuses, declared once and named by every
//! operation that uses it. The responses are derived from the reason table: grouped by the status
//! [`Reason::status`] gives each reason, with a body schema whose `reason` is one of the listed
//! codes, and the table's explanation of each in the description. So a reason cannot be documented
//! under a status the server does not answer it with, and a schema-driven client checking a
//! refusal against the document checks its `reason` too.

use std::collections::BTreeMap;

use tokenlab_core::Reason;
use tokenlab_core::wire::{ErrorBody, OAuthErrorBody};
use utoipa::ToSchema as _;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::{ContentBuilder, RefOr};

/// What the layers around all of `/api` answer any request with (`app::router`): a body that
/// broke off, did not arrive within `--body-timeout` or is over `serve::MAX_BODY_BYTES`
/// (`serve::read_body_within`, whatever the handler would read); a handler past
/// `--handler-timeout` (a 503 that `error::json_errors` words `deadline_exceeded`); a server
/// fault; the database not serving it (no pool connection within `--db-acquire-timeout`, a lost
/// connection); with `--session-store redis://…`, Redis not answering when the request's session
/// (either cookie's, which most routes carry) is read or written.
pub const EVERY_REQUEST: &[Reason] = &[
    Reason::BadRequest,
    Reason::RequestTimeout,
    Reason::PayloadTooLarge,
    Reason::Internal,
    Reason::DeadlineExceeded,
    Reason::DatabaseUnavailable,
    Reason::SessionStoreUnavailable,
];
/// `guard::reject_cross_site`, around every state-changing request under `/api`.
pub const STATE_CHANGING: &[Reason] = &[Reason::CrossSiteRequest];
/// `ApiJson`: a body that is not JSON, not sent as JSON, or of the wrong shape.
pub const JSON_BODY: &[Reason] =
    &[Reason::InvalidJson, Reason::UnsupportedMediaType, Reason::InvalidBody];
/// A path parameter that does not parse: axum's rejection, worded by `error::json_errors`.
pub const PATH_PARAMETER: &[Reason] = &[Reason::BadRequest];
/// `auth::password::authenticate`: the throttles, a slot of the hashing pool, the check.
pub const PASSWORD_CHECK: &[Reason] =
    &[Reason::InvalidCredentials, Reason::RateLimited, Reason::ServerBusy];
/// `hasher::PasswordHasher::hash`: waiting for a slot of the hashing pool.
pub const PASSWORD_HASH: &[Reason] = &[Reason::ServerBusy];
/// `auth::session::signed_in`: the session-id scheme.
pub const SESSION: &[Reason] =
    &[Reason::NotLoggedIn, Reason::SessionExpired, Reason::DbscRefreshRequired];
/// `auth::device::authenticate_device`: the device headers (a bound device's: its proof),
/// against the `tl_device` session or the database.
pub const DEVICE: &[Reason] = &[
    Reason::DpopProofInvalid,
    Reason::DpopProofReplayed,
    Reason::UseDpopNonce,
    Reason::DeviceCredentialsMissing,
    Reason::DeviceTokenMismatch,
    Reason::DeviceUnknown,
    Reason::DeviceRevoked,
    Reason::DeviceTokenExpired,
    Reason::DeviceTokenReused,
];
/// `auth::dpop::accept`: a DPoP proof (its form, key, request, window, nonce), and its `jti` not
/// seen before.
pub const DPOP_PROOF: &[Reason] =
    &[Reason::DpopProofInvalid, Reason::DpopProofReplayed, Reason::UseDpopNonce];
/// `auth::bearer::verify_signed_claims`: an access token's signature and time claims, and for a
/// token bound to a key, its proof.
pub const SIGNED_TOKEN: &[Reason] = &[
    Reason::NotLoggedIn,
    Reason::TokenInvalid,
    Reason::TokenExpired,
    Reason::TokenBound,
    Reason::DpopProofInvalid,
    Reason::DpopProofReplayed,
    Reason::UseDpopNonce,
];
/// `auth::bearer::bearer_claims`: also, the token's login was not ended.
pub const BEARER: &[Reason] = &[
    Reason::NotLoggedIn,
    Reason::TokenInvalid,
    Reason::TokenExpired,
    Reason::TokenBound,
    Reason::DpopProofInvalid,
    Reason::DpopProofReplayed,
    Reason::UseDpopNonce,
    Reason::TokenRevoked,
];
/// `auth::Caller`: an access token, else the device headers (checked against the database only),
/// else the session cookie.
pub const CALLER: &[Reason] = &[
    Reason::NotLoggedIn,
    Reason::DbscRefreshRequired,
    Reason::SessionExpired,
    Reason::DeviceUnknown,
    Reason::DeviceRevoked,
    Reason::DeviceTokenExpired,
    Reason::DeviceTokenReused,
    Reason::TokenInvalid,
    Reason::TokenExpired,
    Reason::TokenBound,
    Reason::DpopProofInvalid,
    Reason::DpopProofReplayed,
    Reason::UseDpopNonce,
    Reason::TokenRevoked,
];

/// The `DPoP` request header (RFC 9449 §4): a proof, signed by the key the tokens are (to be)
/// bound to, of this request's method and URL.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read from the `HeaderMap`; this type only describes it.
pub struct DpopProofHeader {
    /// A DPoP proof JWT (`typ: dpop+jwt`, ES256 or EdDSA, the public key in `jwk`; claims `jti`,
    /// `htm`, `htu`, `iat`, with `ath` beside a bound access token and `nonce` when the server
    /// asks for one). Each proof counts once.
    #[param(rename = "DPoP")]
    dpop: Option<String>,
}
/// The demo's endpoints check the profile themselves, not only by being routed in it.
pub const DEMO_ONLY: &[Reason] = &[Reason::NotFound];

/// Declares `$name`, the error responses of one operation: [`EVERY_REQUEST`] and the reasons of
/// the listed families (each a `&[Reason]`). Name it in the operation's `responses(...)`.
macro_rules! refusals {
    ($(#[$doc:meta])* $name:ident = $($family:expr),+ $(,)?) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::api::refusals::responses(&[$crate::api::refusals::EVERY_REQUEST, $($family),+])
            }
        }
    };
}
pub(crate) use refusals;

/// The body a refusal is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `ErrorBody`, the body of every refusal but the token endpoint's.
    Error,
    /// `OAuthErrorBody`: RFC 6749 §5.2's shape, which the token endpoint answers with.
    OAuth,
}

impl Body {
    fn schema_name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Body::Error => ErrorBody::name(),
            Body::OAuth => OAuthErrorBody::name(),
        }
    }
}

/// The responses of `families`' reasons, each under the status the table gives it, in `ErrorBody`.
pub fn responses(families: &[&[Reason]]) -> BTreeMap<String, RefOr<Response>> {
    grouped(
        families.iter().copied().flatten().map(|&reason| (reason.status(), Body::Error, reason)),
    )
}

/// One response per status, listing the reasons answered with it and the body each comes in.
pub fn grouped(
    refusals: impl IntoIterator<Item = (u16, Body, Reason)>,
) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<(Body, Reason)>> = BTreeMap::new();
    for (status, body, reason) in refusals {
        let listed = by_status.entry(status).or_default();
        if !listed.contains(&(body, reason)) {
            listed.push((body, reason));
        }
    }
    by_status
        .into_iter()
        .map(|(status, listed)| (status.to_string(), RefOr::T(response(&listed))))
        .collect()
}

fn response(listed: &[(Body, Reason)]) -> Response {
    let codes: Vec<String> = listed.iter().map(|(_, r)| format!("`{}`", r.code())).collect();
    let explained: Vec<String> =
        listed.iter().map(|(_, r)| format!("- `{}`: {}", r.code(), r.explanation())).collect();
    let mut bodies: Vec<Body> = Vec::new();
    for (body, _) in listed {
        if !bodies.contains(body) {
            bodies.push(*body);
        }
    }
    let mut schemas: Vec<Schema> = bodies
        .into_iter()
        .map(|body| {
            let codes = listed.iter().filter(|(b, _)| *b == body).map(|(_, r)| r.code());
            body_schema(body, codes)
        })
        .collect();
    let schema = match schemas.pop() {
        Some(only) if schemas.is_empty() => only,
        last => Schema::AnyOf(
            schemas.into_iter().chain(last).fold(AnyOfBuilder::new(), AnyOfBuilder::item).build(),
        ),
    };
    let mut response = ResponseBuilder::new()
        .description(format!("{}\n\n{}", codes.join(", "), explained.join("\n")))
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build());
    let reasons = || listed.iter().map(|(_, r)| *r);
    if reasons().any(|r| {
        matches!(r, Reason::RateLimited | Reason::ServerBusy | Reason::DatabaseUnavailable)
    }) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    if reasons().any(|r| BEARER.contains(&r) && r != Reason::NotLoggedIn) {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "With a refused access token: `Bearer error=\"invalid_token\"` (RFC 6750 §3).",
                ))
                .build(),
        );
    }
    response.build()
}

/// `body`, with `reason` narrowed to `codes`.
fn body_schema<'a>(body: Body, codes: impl Iterator<Item = &'a str>) -> Schema {
    let reason = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes));
    let narrowed = ObjectBuilder::new().schema_type(Type::Object).property("reason", reason);
    Schema::AllOf(
        AllOfBuilder::new().item(Ref::from_schema_name(body.schema_name())).item(narrowed).build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_grouped_under_the_status_the_table_gives_them() {
        let documented = responses(&[JSON_BODY, PASSWORD_CHECK, &[Reason::WeakPassword]]);
        let statuses: Vec<&str> = documented.keys().map(String::as_str).collect();
        assert_eq!(statuses, ["400", "401", "415", "422", "429", "503"]);
        let RefOr::T(unprocessable) = &documented["422"] else { panic!("inline response") };
        let text = &unprocessable.description;
        assert!(text.starts_with("`invalid_body`, `weak_password`"), "{text}");
        let RefOr::T(busy) = &documented["503"] else { panic!("inline response") };
        assert!(busy.headers.contains_key("Retry-After"));
    }
}
