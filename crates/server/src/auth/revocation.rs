//! Which access tokens are no longer honoured although their signature and `exp` are fine.
//!
//! An access token names its login: its `sid` claim is the handle of the refresh-token family it
//! was minted from. Ending a login (logout, sign out everywhere, a password change, reuse
//! detection) revokes that family in the database, and so every access token of it.
//!
//! Checking the database on every bearer request would cost a statement per request, which is
//! what access tokens exist to avoid. Each instance therefore keeps the set of revoked families in
//! memory and reloads it from the database every [`RELOAD_EVERY`], in the background; an instance
//! that revokes something reloads at once. The set is a cache of the database, never the truth: a
//! second instance refuses a revoked access token within `RELOAD_EVERY` plus one query, well
//! inside `core::signout::ACCESS_REVOCATION_BOUND`. A family is kept in the set until its absolute
//! end has passed, after which no access token of it can be valid anyway.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{
    ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, QuerySelect as _,
};
use tokenlab_core::Clock;

use crate::entities::refresh_families;
use crate::secrets::storage_hash;

/// How often every instance reloads the revoked families.
pub const RELOAD_EVERY: Duration = Duration::from_millis(250);

/// The `sid` an access token carries for its refresh-token family: derived from the family's id
/// (which stays in the database) so that the claim names the login without revealing the id.
pub fn family_handle(family_id: &str) -> String {
    storage_hash(&format!("sid:{family_id}"))[..32].to_owned()
}

#[derive(Debug, Default)]
pub struct RevokedFamilies {
    /// The newest snapshot installed, and the ticket of the reload that read it.
    snapshot: RwLock<Snapshot>,
    /// Tickets are handed out before a reload reads the database: a reload that started later
    /// read a later state, so its snapshot may replace an earlier one and never the other way.
    tickets: AtomicU64,
}

#[derive(Debug, Default)]
struct Snapshot {
    ticket: u64,
    handles: Arc<HashSet<String>>,
}

impl RevokedFamilies {
    /// Whether the family an access token names was ended. Never touches the database.
    pub fn contains(&self, handle: &str) -> bool {
        match self.snapshot.read() {
            Ok(snapshot) => snapshot.handles.contains(handle),
            // A writer panicked mid-swap; the snapshot it guarded is still whole.
            Err(poisoned) => poisoned.into_inner().handles.contains(handle),
        }
    }

    /// Replaces the set with the database's: every revoked family that can still have live
    /// access tokens.
    #[tracing::instrument(name = "revocation.reload", level = "debug", skip_all)]
    pub async fn reload(
        &self,
        db: &DatabaseConnection,
        clock: &dyn Clock,
    ) -> Result<(), sea_orm::DbErr> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let now = clock.now().unix_timestamp();
        let ids: Vec<String> = refresh_families::Entity::find()
            .select_only()
            .column(refresh_families::Column::Id)
            .filter(refresh_families::Column::RevokedAt.is_not_null())
            // Kept a minute past the end: access tokens are accepted with a few seconds of leeway.
            .filter(refresh_families::Column::AbsoluteExpiresAt.gt(now - 60))
            .into_tuple()
            .all(db)
            .await?;
        let set: HashSet<String> = ids.iter().map(|id| family_handle(id)).collect();
        let fresh = Snapshot { ticket, handles: Arc::new(set) };
        let mut installed = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A background reload that began before a revocation committed may finish after the
        // reload that followed it; its older picture must not undo the newer one.
        if fresh.ticket > installed.ticket {
            *installed = fresh;
        }
        Ok(())
    }

    /// Reloads right after this instance ended something, so it refuses the ended login's tokens
    /// at once. The ending is already committed: a failed reload is logged, not answered as a
    /// failure, and the background reload covers it within [`RELOAD_EVERY`].
    pub async fn reload_after_change(&self, db: &DatabaseConnection, clock: &dyn Clock) {
        if let Err(err) = self.reload(db, clock).await {
            tracing::warn!(error = %err, "reloading revoked families after an ending failed");
        }
    }

    /// Reloads every [`RELOAD_EVERY`] until the task is aborted.
    pub async fn keep_loading(self: Arc<Self>, db: DatabaseConnection, clock: Arc<dyn Clock>) {
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(err) = self.reload(&db, clock.as_ref()).await {
                tracing::warn!(error = %err, "reloading revoked refresh families failed; keeping the last set");
            }
        }
    }
}
