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
    /// The signed-in user, copied from the session's owner record (`sessions::SessionOwner`).
    pub user_id: Option<i64>,
    /// For a device-scheme session: the `devices.id` it was attached to.
    pub device_pk: Option<i64>,
    /// The opaque id `GET /api/sessions` shows; random, unrelated to the session id.
    pub handle: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
