//! A Redis key prefix of one test's own: the server under test writes under it, the test reads
//! what is there, and every key under it is deleted when the test is done. Shared by the API tests
//! (`api/redis_sessions.rs`) and the cross-instance suite; never a whole Redis database.

pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    /// `{namespace}:{random}:` on the Redis at `url`.
    pub fn new(url: &str, namespace: &str) -> Self {
        let prefix = format!("{namespace}:{}:", uuid::Uuid::new_v4().simple());
        Self { url: url.to_owned(), prefix }
    }

    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url.as_str())?.get_connection()
    }

    /// The keys under the prefix whose rest matches `pattern` (`*` for all).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut connection = self.connection().unwrap();
        redis::cmd("KEYS").arg(format!("{}{pattern}", self.prefix)).query(&mut connection).unwrap()
    }

    /// How many sessions are stored under the prefix.
    pub fn sessions(&self) -> usize {
        self.keys("session:*").len()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(mut connection) = self.connection() else { return };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}
