use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `pending`: password checks in progress under a throttle key, reserved before the check and
/// released after it, so concurrent guesses cannot all pass a limit that counts only failures.
/// `attempts` now counts failures only (a correct password is never counted).
#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    Pending,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Counters kept under the old meaning (attempts, not failures) and old keys are dropped;
        // at worst a guesser gets one fresh window.
        manager.get_connection().execute_unprepared("DELETE FROM login_throttle").await?;
        manager
            .alter_table(
                Table::alter()
                    .table(LoginThrottle::Table)
                    .add_column(
                        ColumnDef::new(LoginThrottle::Pending).big_integer().not_null().default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginThrottle::Table)
                    .drop_column(LoginThrottle::Pending)
                    .to_owned(),
            )
            .await
    }
}
