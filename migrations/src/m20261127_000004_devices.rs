use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

/// A device a user logged in on, with its token. As written (the article), `token` holds the device
/// id itself, in plain text. Hardened, only `token_hash` (SHA-256 of a random secret) is kept, with
/// the hash it replaced at the last rotation and when, to tell a request in flight from a thief.
#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    DeviceId,
    Name,
    Mode,
    Token,
    TokenHash,
    PreviousTokenHash,
    RotatedAt,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(
                        ColumnDef::new(Devices::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Devices::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Devices::DeviceId).string_len(128).not_null())
                    .col(ColumnDef::new(Devices::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Devices::Mode).string_len(16).not_null())
                    .col(ColumnDef::new(Devices::Token).string_len(128).null())
                    .col(ColumnDef::new(Devices::TokenHash).string_len(64).null())
                    .col(ColumnDef::new(Devices::PreviousTokenHash).string_len(64).null())
                    .col(ColumnDef::new(Devices::RotatedAt).big_integer().null())
                    .col(ColumnDef::new(Devices::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Devices::LastSeenAt).big_integer().not_null())
                    .col(ColumnDef::new(Devices::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Devices::RevokedAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Devices::Table, Devices::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column, unique) in [
            ("devices_device_id", Devices::DeviceId, false),
            ("devices_token_hash", Devices::TokenHash, true),
            ("devices_previous_token_hash", Devices::PreviousTokenHash, false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Devices::Table).col(column);
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("devices_user_device")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .col(Devices::DeviceId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Devices::Table).to_owned()).await
    }
}
