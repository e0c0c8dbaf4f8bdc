use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Settings the demo changes at runtime (the token-policy preset). They live in the database, not
/// in the process, so every instance behind a load balancer applies the same one.
#[derive(DeriveIden)]
enum DemoSettings {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DemoSettings::Table)
                    .col(ColumnDef::new(DemoSettings::Name).string().not_null().primary_key())
                    .col(ColumnDef::new(DemoSettings::Value).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DemoSettings::Table).to_owned()).await
    }
}
