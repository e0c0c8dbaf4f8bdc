use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Events the demo counts so the lab can observe what it cannot see itself: a cross-site request
/// is refused inside a frame of another origin, whose answer the lab page may not read. Counted in
/// the database so the count is the same whichever instance refused the request.
#[derive(DeriveIden)]
enum DemoCounters {
    Table,
    Name,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DemoCounters::Table)
                    .col(ColumnDef::new(DemoCounters::Name).string().not_null().primary_key())
                    .col(ColumnDef::new(DemoCounters::Count).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DemoCounters::Table).to_owned()).await
    }
}
