//! The two error shapes: [`ErrorBody`], the body of every 4xx and 5xx, and [`OAuthErrorBody`],
//! RFC 6749 §5.2's shape that the token endpoint answers with instead.

use serde::{Deserialize, Serialize};

use crate::Reason;

/// The body of every 4xx and 5xx the API sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable, machine-readable: branch on this.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::reason))]
    pub reason: Reason,
    /// For people; may change wording between versions.
    pub message: String,
    /// Present with some reasons: e.g. `original_order_id` with `duplicate_submit`.
    #[serde(flatten)]
    pub details: ErrorDetails,
}

/// The facts a refusal carries beside `reason` and `message`, each only with the reasons it
/// belongs to. On the wire they are members of the error body itself (flattened), absent when not
/// set, so `{reason, message}` is all most refusals say.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetails {
    /// With `duplicate_submit`: the order the spent form token created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_order_id: Option<i64>,
}

/// RFC 6749 §5.2's `error` codes that the token endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// A parameter is missing or malformed, or the body is not a form or JSON.
    InvalidRequest,
    /// The credentials or the refresh token were refused.
    InvalidGrant,
    /// `grant_type` is neither `password` nor `refresh_token`.
    UnsupportedGrantType,
    /// The `DPoP` proof was refused (RFC 9449 §5).
    InvalidDpopProof,
    /// Retry with the nonce in the answer's `DPoP-Nonce` (RFC 9449 §8).
    UseDpopNonce,
}

impl OAuthErrorCode {
    pub const ALL: [OAuthErrorCode; 5] = [
        OAuthErrorCode::InvalidRequest,
        OAuthErrorCode::InvalidGrant,
        OAuthErrorCode::UnsupportedGrantType,
        OAuthErrorCode::InvalidDpopProof,
        OAuthErrorCode::UseDpopNonce,
    ];

    /// The wire form, as in `{"error": "..."}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            OAuthErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }

    /// The RFC 6749 code a refusal of the token endpoint is reported with, beside its `reason`.
    pub const fn for_reason(reason: Reason) -> OAuthErrorCode {
        match reason {
            Reason::UnsupportedGrantType => OAuthErrorCode::UnsupportedGrantType,
            Reason::InvalidRequest | Reason::InvalidJson | Reason::UnsupportedMediaType => {
                OAuthErrorCode::InvalidRequest
            }
            Reason::DpopProofInvalid | Reason::DpopProofReplayed => {
                OAuthErrorCode::InvalidDpopProof
            }
            Reason::UseDpopNonce => OAuthErrorCode::UseDpopNonce,
            _ => OAuthErrorCode::InvalidGrant,
        }
    }
}

/// RFC 6749 §5.2, with tokenlab's `reason` beside the standard `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthErrorBody {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::oauth_error_code))]
    pub error: OAuthErrorCode,
    pub error_description: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::wire::schemas::reason))]
    pub reason: Reason,
    pub message: String,
}
