use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    UserId,
    Item,
    Quantity,
    CreatedAt,
}

/// One-time form tokens. `order_id` is set, in the same transaction that writes the order, by a
/// conditional update that only one submission can win; it also lets a duplicate be told which
/// order its first submission created.
#[derive(DeriveIden)]
enum FormTokens {
    Table,
    TokenHash,
    UserId,
    OrderId,
    CreatedAt,
    ExpiresAt,
}

/// Idempotency keys, scoped per user. A row is claimed by an insert-on-conflict; `claim` names the
/// request currently processing it, so a request whose lease was taken over cannot finish it.
#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    Fingerprint,
    Claim,
    Finished,
    ResponseStatus,
    ResponseBody,
    LeaseUntil,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(
                        ColumnDef::new(Orders::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Orders::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Orders::Item).string_len(100).not_null())
                    .col(ColumnDef::new(Orders::Quantity).big_integer().not_null())
                    .col(ColumnDef::new(Orders::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Orders::Table, Orders::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_user")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FormTokens::Table)
                    .col(
                        ColumnDef::new(FormTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(FormTokens::UserId).big_integer().not_null())
                    .col(ColumnDef::new(FormTokens::OrderId).big_integer().null())
                    .col(ColumnDef::new(FormTokens::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(FormTokens::ExpiresAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(FormTokens::Table, FormTokens::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::UserId).big_integer().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Key).string_len(255).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Fingerprint).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Claim).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Finished).boolean().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::ResponseStatus).integer().null())
                    .col(ColumnDef::new(IdempotencyKeys::ResponseBody).text().null())
                    .col(ColumnDef::new(IdempotencyKeys::LeaseUntil).big_integer().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::ExpiresAt).big_integer().not_null())
                    .primary_key(
                        Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(FormTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Orders::Table).to_owned()).await
    }
}
