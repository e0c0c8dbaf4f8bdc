use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Whose a server session is, so that a user's sessions can be listed and ended together (sign out
/// everywhere, password change) without reading every session's data. Filled by the session store
/// from the session's owner record; `handle` is the opaque id `GET /api/sessions` shows, unrelated
/// to the session id.
#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserId,
    DevicePk,
    Handle,
}

/// `login_epoch` counts the logins on a device row: a server session remembers the epoch it was
/// attached under, so logging in again on a device (even a revoked one) never revives an older
/// session of it.
#[derive(DeriveIden)]
enum Devices {
    Table,
    LoginEpoch,
}

/// The client a refresh-token family was issued to, to tell logins apart in the sessions list.
#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    UserAgent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Sessions written before this migration carry no owner: they could not be ended by a
        // sign-out everywhere, so they end now (everyone logs in once more after the upgrade).
        manager.get_connection().execute_unprepared("DELETE FROM sessions").await?;
        for column in [
            ColumnDef::new(Sessions::UserId).big_integer().null().to_owned(),
            ColumnDef::new(Sessions::DevicePk).big_integer().null().to_owned(),
            ColumnDef::new(Sessions::Handle).string_len(32).null().to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table(Sessions::Table).add_column(column).to_owned())
                .await?;
        }
        for (name, column) in [
            ("sessions_user_id", Sessions::UserId),
            ("sessions_device_pk", Sessions::DevicePk),
            ("sessions_handle", Sessions::Handle),
        ] {
            manager
                .create_index(
                    Index::create().name(name).table(Sessions::Table).col(column).to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshFamilies::Table)
                    .add_column(ColumnDef::new(RefreshFamilies::UserAgent).string_len(200).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(
                        ColumnDef::new(Devices::LoginEpoch).big_integer().not_null().default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshFamilies::Table)
                    .drop_column(RefreshFamilies::UserAgent)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Devices::Table).drop_column(Devices::LoginEpoch).to_owned(),
            )
            .await?;
        for name in ["sessions_user_id", "sessions_device_pk", "sessions_handle"] {
            manager.drop_index(Index::drop().name(name).table(Sessions::Table).to_owned()).await?;
        }
        for column in [Sessions::UserId, Sessions::DevicePk, Sessions::Handle] {
            manager
                .alter_table(Table::alter().table(Sessions::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
