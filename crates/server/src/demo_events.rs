//! Counts of events the demo wants to show but the lab page cannot observe directly (see the
//! `demo_counters` migration). Demo profile only; a failure to count is logged and never changes
//! the answer to the request that was counted.

use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};

/// A request refused by `guard::reject_cross_site`.
pub const CROSS_SITE_REFUSED: &str = "cross_site_refused";

pub async fn count(db: &DatabaseConnection, name: &str) {
    // One statement, so concurrent refusals on any number of instances are each counted.
    let sql = "INSERT INTO demo_counters (name, count) VALUES ($1, 1) \
               ON CONFLICT (name) DO UPDATE SET count = demo_counters.count + 1";
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, [name.into()]);
    if let Err(err) = db.execute_raw(statement).await {
        tracing::warn!(error = %err, name, "could not count a demo event");
    }
}

/// The count so far, 0 if the event never happened.
pub async fn read(db: &DatabaseConnection, name: &str) -> Result<i64, sea_orm::DbErr> {
    let sql = "SELECT count FROM demo_counters WHERE name = $1";
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, [name.into()]);
    match db.query_one_raw(statement).await? {
        Some(row) => row.try_get("", "count"),
        None => Ok(0),
    }
}
