use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// SHA-256 (hex) of the session id; the id itself is only ever in the client's cookie.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    /// The session's key/value data as JSON.
    pub data: String,
    /// Unix seconds on the real clock after which the row is garbage.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
