use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 of the request's meaning (not its bytes), to tell a retry from a different request.
    pub fingerprint: String,
    /// Random id of the request currently processing the key.
    pub claim: String,
    pub finished: bool,
    pub response_status: Option<i32>,
    /// The first response's body, replayed byte for byte.
    pub response_body: Option<String>,
    pub lease_until: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
