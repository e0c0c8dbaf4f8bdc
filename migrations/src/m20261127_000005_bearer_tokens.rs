use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

/// Keys the server generates on first start and keeps: Ed25519 signing keys for access tokens
/// (`kind = 'ed25519'`, the newest unretired one signs) and the HMAC key that derives a refresh
/// token's child (`kind = 'hmac'`). Never in the repository.
#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Kid,
    Kind,
    Secret,
    Public,
    CreatedAt,
    RetiredAt,
}

/// One login's chain of refresh tokens.
#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    Id,
    UserId,
    CreatedAt,
    AbsoluteExpiresAt,
    RevokedAt,
    RevokedReason,
}

/// Refresh tokens by SHA-256. `rotated_at`/`child_hash` are set, by a conditional update only one
/// concurrent refresh can win, when the token is exchanged.
#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    ParentHash,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    ChildHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(ColumnDef::new(ServerKeys::Kid).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(ServerKeys::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(ServerKeys::Secret).text().not_null())
                    .col(ColumnDef::new(ServerKeys::Public).text().null())
                    .col(ColumnDef::new(ServerKeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ServerKeys::RetiredAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshFamilies::Table)
                    .col(
                        ColumnDef::new(RefreshFamilies::Id).string_len(64).not_null().primary_key(),
                    )
                    .col(ColumnDef::new(RefreshFamilies::UserId).big_integer().not_null())
                    .col(ColumnDef::new(RefreshFamilies::CreatedAt).big_integer().not_null())
                    .col(
                        ColumnDef::new(RefreshFamilies::AbsoluteExpiresAt).big_integer().not_null(),
                    )
                    .col(ColumnDef::new(RefreshFamilies::RevokedAt).big_integer().null())
                    .col(ColumnDef::new(RefreshFamilies::RevokedReason).string_len(32).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshFamilies::Table, RefreshFamilies::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(
                        ColumnDef::new(RefreshTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RefreshTokens::FamilyId).string_len(64).not_null())
                    .col(ColumnDef::new(RefreshTokens::ParentHash).string_len(64).null())
                    .col(ColumnDef::new(RefreshTokens::IssuedAt).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokens::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(RefreshTokens::RotatedAt).big_integer().null())
                    .col(ColumnDef::new(RefreshTokens::ChildHash).string_len(64).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::FamilyId)
                            .to(RefreshFamilies::Table, RefreshFamilies::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RefreshTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RefreshFamilies::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ServerKeys::Table).to_owned()).await
    }
}
