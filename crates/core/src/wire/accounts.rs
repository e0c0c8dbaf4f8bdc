//! `POST /api/accounts`. The request (`NewAccount`) and the password change carry passwords and
//! stay with the server.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub id: i64,
    pub username: String,
}
