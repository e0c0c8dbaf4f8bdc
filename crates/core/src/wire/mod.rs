//! The wire contract: every body the HTTP API sends, the request bodies that carry no secret, and
//! the claims an access token carries, declared once and compiled by both sides.
//!
//! The server serializes these types and the browser deserializes the very same ones, so renaming
//! a field or changing its type fails to compile instead of failing silently at run time. They are
//! plain serde types; with the `openapi` feature (the server's build) they also derive
//! `utoipa::ToSchema`, which is where the API document's schemas come from. Timestamps travel as
//! RFC 3339 strings, reasons, device modes and sign-in schemes as core's own enums.
//!
//! Request bodies whose fields are secrets (passwords, refresh tokens) are in [`credentials`], as
//! `secrecy::SecretString`s; the browser builds those requests itself and never reads them.

pub mod accounts;
pub mod credentials;
pub mod demo;
pub mod device;
pub mod errors;
mod numbers;
pub mod oauth;
pub mod orders;
#[cfg(feature = "openapi")]
pub mod schemas;
pub mod session;
pub mod sessions;

pub use accounts::Account;
pub use demo::{
    ChoosePolicy, ClockChange, ClockState, IdempotencyKeyState, InspectedDevice,
    InspectedDeviceState, InspectedFamily, InspectedFormToken, InspectedIdempotencyKey,
    InspectedOrder, InspectedRefreshToken, InspectedSession, InspectedSessionState, InspectedTimes,
    InspectedTokenState, InspectedUser, InspectorQuery, NewKey, PolicyChoice, PolicyPreset,
    ResetDone, RetireKey, ServerState, SessionsExpired, StatelessVerdict,
};
pub use device::{
    DeviceList, DeviceListEntry, DeviceLoginResponse, DeviceMe, DeviceSessionInfo, DeviceView,
};
pub use errors::{ErrorBody, ErrorDetails, OAuthErrorBody, OAuthErrorCode};
pub use oauth::{
    AccessClaims, BearerMe, Confirmation, Family, FamilyToken, FamilyTokenState, Jwk, JwkSet,
    TokenInfo, TokenResponse,
};
pub use orders::{CreatedOrder, FormToken, NewOrder, Order, OrderList};
pub use session::{
    DbscCredential, DbscInstructions, DbscScope, DbscScopeRule, SessionBinding, SessionInfo,
    SessionView, UserView,
};
pub use sessions::{ActiveSession, Ended, RevokeAll, RevokedAll, SessionList};

#[cfg(test)]
mod tests;
