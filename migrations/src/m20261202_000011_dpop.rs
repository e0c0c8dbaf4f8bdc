use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// DPoP proofs already accepted (RFC 9449 §11.1): a proof counts once, on whichever instance it
/// reaches first. `proof_hash` is the SHA-256 of the key's thumbprint and the proof's `jti`;
/// `expires_at` is when the proof's `iat` leaves the acceptance window, after which the row can
/// go (the proof would be refused as too old anyway).
#[derive(DeriveIden)]
enum DpopProofsSeen {
    Table,
    ProofHash,
    ExpiresAt,
}

/// The key a bound device registered at login (the thumbprint of its DPoP proof's key); `None`
/// for the other modes.
#[derive(DeriveIden)]
enum Devices {
    Table,
    DpopJkt,
}

/// The key a refresh-token family is bound to (RFC 9449 §5: a public client's refresh token is
/// bound to the key its first proof was signed with); `None` for a bearer family.
#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    DpopJkt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DpopProofsSeen::Table)
                    .col(ColumnDef::new(DpopProofsSeen::ProofHash).string_len(64).primary_key())
                    .col(ColumnDef::new(DpopProofsSeen::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("dpop_proofs_seen_expires_at")
                    .table(DpopProofsSeen::Table)
                    .col(DpopProofsSeen::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshFamilies::Table)
                    .add_column(ColumnDef::new(RefreshFamilies::DpopJkt).string_len(43).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(ColumnDef::new(Devices::DpopJkt).string_len(43).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Devices::Table).drop_column(Devices::DpopJkt).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshFamilies::Table)
                    .drop_column(RefreshFamilies::DpopJkt)
                    .to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(DpopProofsSeen::Table).to_owned()).await
    }
}
