//! The lab's clock, one for every instance on the database.
//!
//! Each instance's handlers read an in-memory [`DemoClock`] (no statement per request); the offset
//! itself is a row (`demo_clock`), moved there atomically and copied into memory at once by the
//! instance that moved it and within [`RELOAD_EVERY`] by every other.
//!
//! The instance that moves the clock answers only after [`SETTLE`], two reload periods later: by
//! the time the lab sees "+31 min" done, every other instance has read it too, so the next request
//! — which a load balancer may send anywhere — is judged on the moved clock. Without that, "+31 min
//! then check the session" landed on an instance still a step behind and saw the session alive.

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _};
use tokenlab_core::clock::AdvanceError;

use crate::entities::demo_clock::{Column, Entity};
use crate::state::DemoClock;

/// How often every instance re-reads the shared offset (one primary-key read: cheap).
pub const RELOAD_EVERY: Duration = Duration::from_millis(100);

/// How long a move of the clock waits before it is answered: two reload periods and a margin
/// for the read itself, so that every instance has re-read the offset.
pub const SETTLE: Duration =
    RELOAD_EVERY.saturating_mul(2).saturating_add(Duration::from_millis(50));

/// Waits [`SETTLE`] (see the module comment).
pub async fn settle() {
    tokio::time::sleep(SETTLE).await;
}

/// The one row's id.
const ROW: i32 = 1;

/// The shared offset, in seconds.
pub async fn load(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let row = Entity::find_by_id(ROW).one(db).await?;
    // The migration inserts the row; without it the clock simply shows the real time.
    Ok(row.map_or(0, |r| r.offset_seconds))
}

/// Moves every instance's clock forward by `seconds` and this one's at once; the new offset.
pub async fn advance(
    db: &impl ConnectionTrait,
    clock: &DemoClock,
    seconds: i64,
) -> Result<Result<i64, AdvanceError>, DbErr> {
    if let Err(refused) = DemoClock::check_step(seconds) {
        return Ok(Err(refused));
    }
    // One statement, so that two instances advancing at once both count, and it answers the offset
    // it wrote.
    let moved = Entity::update_many()
        .col_expr(Column::OffsetSeconds, Expr::col(Column::OffsetSeconds).add(seconds))
        .filter(Column::Id.eq(ROW))
        .filter(Column::OffsetSeconds.lte(DemoClock::MAX_OFFSET_SECONDS - seconds))
        .exec_with_returning(db)
        .await?;
    let Some(row) = moved.first() else {
        return Ok(Err(AdvanceError::TooLarge));
    };
    clock.adopt(row.offset_seconds);
    Ok(Ok(row.offset_seconds))
}

/// Returns every instance's clock to the real time (this one's at once).
pub async fn reset(db: &impl ConnectionTrait, clock: &DemoClock) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::OffsetSeconds, Expr::value(0_i64))
        .filter(Column::Id.eq(ROW))
        .exec(db)
        .await?;
    clock.adopt(0);
    Ok(())
}

/// Copies the shared offset into `clock` every [`RELOAD_EVERY`], for as long as the server runs.
pub async fn keep_loading(db: sea_orm::DatabaseConnection, clock: std::sync::Arc<DemoClock>) {
    let mut every = tokio::time::interval(RELOAD_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match load(&db).await {
            Ok(offset) => clock.adopt(offset),
            // The clock keeps its last offset; the next tick tries again.
            Err(error) => tracing::warn!(%error, "reading the shared demo clock failed"),
        }
    }
}
