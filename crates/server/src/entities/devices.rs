use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// Chosen by the client; not a secret.
    pub device_id: String,
    /// The user agent at login, to tell devices apart in the list.
    pub name: String,
    /// `as_written`, `hardened` or `bound`.
    pub mode: String,
    /// As written only: the token, which is the device id, in plain text (the article's design).
    pub token: Option<String>,
    /// Hardened only: SHA-256 (hex) of the current secret.
    pub token_hash: Option<String>,
    /// Hardened only: the hash the last rotation replaced, and when.
    pub previous_token_hash: Option<String>,
    pub rotated_at: Option<i64>,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Hardened and bound: the absolute end of the token's (or the key's) life.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// Bumped by every login on this row; a server session is honoured only under the epoch it
    /// was attached in, so a new login never revives an older session.
    pub login_epoch: i64,
    /// Bound only: the thumbprint (RFC 7638) of the key the device registered at login.
    pub dpop_jkt: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
