//! The request bodies that carry secrets: passwords and refresh tokens. Declared here, beside the
//! rest of the wire contract, so that what reads them from the network — the server, and the fuzz
//! targets that attack that reading (`fuzz/`) — is one code. Every secret is a
//! [`SecretString`]: its `Debug` prints `[REDACTED]`, so a body logged whole leaks nothing.

use secrecy::SecretString;
use serde::Deserialize;

use crate::Reason;
use crate::account::RuleViolation;
use crate::device::DeviceMode;

/// `POST /api/accounts`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::username))]
    pub username: String,
    /// Used exactly as sent (never trimmed).
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, schema_with = crate::wire::schemas::new_password)
    )]
    pub password: SecretString,
}

/// `POST /api/accounts/password`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[cfg_attr(feature = "openapi", schema(example = "alice"))]
    pub username: String,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, schema_with = crate::wire::schemas::password)
    )]
    pub current_password: SecretString,
    /// Used exactly as sent.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, schema_with = crate::wire::schemas::new_password)
    )]
    pub new_password: SecretString,
}

/// `POST /api/session/login`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(example = "alice"))]
    pub username: String,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, schema_with = crate::wire::schemas::password)
    )]
    pub password: SecretString,
}

/// `POST /api/device/login`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceLogin {
    #[cfg_attr(feature = "openapi", schema(example = "alice"))]
    pub username: String,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, schema_with = crate::wire::schemas::password)
    )]
    pub password: SecretString,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::device_id))]
    pub device_id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::device_mode))]
    pub mode: DeviceMode,
}

/// `POST /api/oauth/token` (RFC 6749 §4.3.2 / §6), form-encoded as the RFC requires or JSON. Read
/// loosely — every field optional, unknown ones ignored — so that [`TokenRequest::into_grant`]
/// can answer with the RFC's own errors: a missing field `invalid_request`, another grant
/// `unsupported_grant_type`. The document states the two grants exactly
/// (`schemas::token_request`).
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TokenRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::schemas::token_request().into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TokenRequest {}

/// What a token request asks for, once read.
#[derive(Debug)]
pub enum Grant {
    Password { username: String, password: SecretString },
    RefreshToken(SecretString),
}

impl Grant {
    pub const PASSWORD: &str = "password";
    pub const REFRESH_TOKEN: &str = "refresh_token";
}

impl TokenRequest {
    /// The grant this request makes. The refresh grant takes its token from the body, or else from
    /// `refresh_cookie` (the browser variant's HttpOnly cookie).
    pub fn into_grant(self, refresh_cookie: Option<SecretString>) -> Result<Grant, RuleViolation> {
        let refused = |reason, message: &str| RuleViolation { reason, message: message.to_owned() };
        match self.grant_type.as_deref() {
            Some(Grant::PASSWORD) => match (self.username, self.password) {
                (Some(username), Some(password)) => Ok(Grant::Password { username, password }),
                _ => Err(refused(
                    Reason::InvalidRequest,
                    "the password grant needs username and password",
                )),
            },
            Some(Grant::REFRESH_TOKEN) => match self.refresh_token.or(refresh_cookie) {
                Some(token) => Ok(Grant::RefreshToken(token)),
                None => Err(refused(
                    Reason::InvalidRequest,
                    "the refresh_token grant needs refresh_token",
                )),
            },
            Some(_) => Err(refused(Reason::UnsupportedGrantType, "use password or refresh_token")),
            None => Err(refused(Reason::InvalidRequest, "grant_type is missing")),
        }
    }
}

/// `POST /api/oauth/revoke` (RFC 7009), form (`token=…`) or JSON. The document constrains nothing
/// (`schemas::revoke_request`): the endpoint answers 200 to any body.
#[derive(Debug, Deserialize)]
pub struct RevokeRequest {
    pub token: Option<SecretString>,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RevokeRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::schemas::revoke_request().into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RevokeRequest {}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;
    use serde_json::json;

    use super::*;

    fn grant(body: serde_json::Value, cookie: Option<&str>) -> Result<String, Reason> {
        let request: TokenRequest = serde_json::from_value(body).unwrap();
        match request.into_grant(cookie.map(SecretString::from)) {
            Ok(Grant::Password { username, password }) => {
                Ok(format!("password {username} {}", password.expose_secret()))
            }
            Ok(Grant::RefreshToken(token)) => Ok(format!("refresh {}", token.expose_secret())),
            Err(violation) => Err(violation.reason),
        }
    }

    #[test]
    fn token_requests_are_read_as_rfc_6749_says() {
        let cases = [
            (
                json!({"grant_type": "password", "username": "a", "password": "p"}),
                None,
                Ok("password a p"),
            ),
            (json!({"grant_type": "password", "username": "a"}), None, Err(Reason::InvalidRequest)),
            (json!({"grant_type": "password", "password": "p"}), None, Err(Reason::InvalidRequest)),
            (json!({"grant_type": "refresh_token", "refresh_token": "r"}), None, Ok("refresh r")),
            // The body's token wins over the cookie's; the cookie stands in for a missing one.
            (
                json!({"grant_type": "refresh_token", "refresh_token": "r"}),
                Some("c"),
                Ok("refresh r"),
            ),
            (json!({"grant_type": "refresh_token"}), Some("c"), Ok("refresh c")),
            (json!({"grant_type": "refresh_token"}), None, Err(Reason::InvalidRequest)),
            (json!({"grant_type": "client_credentials"}), None, Err(Reason::UnsupportedGrantType)),
            (
                json!({"grant_type": "PASSWORD", "username": "a", "password": "p"}),
                None,
                Err(Reason::UnsupportedGrantType),
            ),
            (json!({"username": "a", "password": "p"}), Some("c"), Err(Reason::InvalidRequest)),
            (
                json!({"grant_type": "password", "username": "a", "password": "p", "scope": "x"}),
                None,
                Ok("password a p"),
            ),
        ];
        for (body, cookie, expected) in cases {
            let expected = expected.map(str::to_owned);
            assert_eq!(grant(body.clone(), cookie), expected, "{body} with cookie {cookie:?}");
        }
    }

    #[test]
    fn secrets_in_bodies_never_print() {
        let login: LoginRequest =
            serde_json::from_value(json!({"username": "alice", "password": "hunter2"})).unwrap();
        let printed = format!("{login:?}");
        assert!(printed.contains("alice") && !printed.contains("hunter2"), "{printed}");
    }
}
