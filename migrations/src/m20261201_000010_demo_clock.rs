use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The demo clock's offset, one row (`id = 1`): every instance on the database reads the same
/// offset, so moving the lab's clock on one instance moves it on all (`server/src/demo_clock.rs`).
/// A number of its own rather than a `demo_settings` string, so that an advance is one atomic
/// `UPDATE … SET offset_seconds = offset_seconds + ?` however many instances move it at once.
#[derive(DeriveIden)]
enum DemoClock {
    Table,
    Id,
    OffsetSeconds,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DemoClock::Table)
                    .col(ColumnDef::new(DemoClock::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(DemoClock::OffsetSeconds).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO demo_clock (id, offset_seconds) VALUES (1, 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DemoClock::Table).to_owned()).await
    }
}
