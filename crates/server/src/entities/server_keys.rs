use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `ed25519` (access-token signing) or `hmac` (refresh-token derivation).
    pub kind: String,
    /// Base64: the PKCS#8 private key, or the HMAC key.
    pub secret: String,
    /// Base64url of the Ed25519 public key (the JWK `x`).
    pub public: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
