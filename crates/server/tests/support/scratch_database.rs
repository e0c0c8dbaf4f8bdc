//! A PostgreSQL database of one test's own, created on the server `TEST_DATABASE_URL` names and
//! dropped when the test is done. Shared by the test binaries that start real `tokenlab`
//! processes (the cross-instance suite, the crash harness); never the `test` database itself.

pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The new database's URL, for `--database-url`.
    pub url: String,
}

impl ScratchDatabase {
    /// `{namespace}_{random}` next to the database `admin_url` names.
    pub async fn create(admin_url: &str, namespace: &str) -> Self {
        use sea_orm::ConnectionTrait as _;
        let name = format!("{namespace}_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(admin_url).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        let mut url = reqwest::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        Self { admin_url: admin_url.to_owned(), name, url: url.to_string() }
    }
}

/// The `n` of `sql` (`SELECT COUNT(*) AS n …`) on the database at `url`, SQLite or PostgreSQL.
pub async fn count(url: &str, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    db.close().await.unwrap();
    n
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with its own
        // small runtime can.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sea_orm::ConnectionTrait as _;
                let admin = sea_orm::Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
    }
}
