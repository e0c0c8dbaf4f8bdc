//! Which token-policy preset is in force.
//!
//! Production applies the one `--token-policy` names, for the life of the process. The demo lets a
//! learner switch presets at runtime and run the same scenario under each; the choice is a row in
//! `demo_settings`, so every instance behind a load balancer issues tokens under the same preset.
//! A switch applies to tokens issued from then on: tokens already out keep the expiry they carry.

use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait as _, Set};
use tokenlab_core::bearer::TokenPolicy;

use crate::entities::demo_settings;
use crate::error::ApiError;
use crate::state::AppState;

const TOKEN_POLICY: &str = "token_policy";

/// The preset tokens are issued under now.
pub async fn current(state: &AppState) -> Result<TokenPolicy, ApiError> {
    if state.demo_clock.is_none() {
        return Ok(state.token_policy);
    }
    let chosen = demo_settings::Entity::find_by_id(TOKEN_POLICY).one(&state.db).await?;
    Ok(chosen.and_then(|row| TokenPolicy::by_name(&row.value)).unwrap_or(state.token_policy))
}

/// Switches the demo to `policy` (callers check the demo profile).
pub async fn choose(state: &AppState, policy: TokenPolicy) -> Result<(), ApiError> {
    demo_settings::Entity::insert(demo_settings::ActiveModel {
        name: Set(TOKEN_POLICY.to_owned()),
        value: Set(policy.name.to_owned()),
    })
    .on_conflict(
        OnConflict::column(demo_settings::Column::Name)
            .update_column(demo_settings::Column::Value)
            .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    Ok(())
}
