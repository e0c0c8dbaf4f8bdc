use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dpop_proofs_seen")]
pub struct Model {
    /// SHA-256 (hex) of the proof key's thumbprint and the proof's `jti`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub proof_hash: String,
    /// When the proof's `iat` leaves the acceptance window (Unix seconds).
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
