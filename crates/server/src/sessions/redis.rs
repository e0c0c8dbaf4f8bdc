//! Server sessions in Redis (`serve --session-store redis://…`), for several instances that
//! should not keep sessions in the database.
//!
//! The same promises as the database store (see `sessions/mod.rs`), kept with Redis' own atomic
//! commands:
//! - ids never stored in clear: a session is `{prefix}session:{sha256(id)}`;
//! - creating is `SET … NX` (a taken id is drawn again), saving is `SET … XX`: a session deleted by
//!   a logout, a sign-out everywhere or an expiry is never written back by a request that loaded
//!   it earlier, on this instance or any other;
//! - expiry is the record's own (`PXAT`), so Redis forgets dead sessions by itself;
//! - a per-user index, `{prefix}user-sessions:{user_id}`, a hash of id hash → the session's owner
//!   columns, lets the sessions list and sign-out everywhere find a user's sessions. It is written
//!   in the same script as the session, expires with the user's last session, and entries whose
//!   session has gone are removed whenever the index is read, so it never grows without bound.
//!
//! Every call is bounded by [`DEADLINE`]: with Redis unreachable, a request that needs a session
//! is answered 503 `session_store_unavailable` at once rather than hanging, and the connection
//! manager reconnects in the background when Redis is back.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokenlab_core::random::SecretSource;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;

use crate::secrets::storage_hash;
use crate::sessions::{OWNER_KEY, SessionOwner, StoredSession, UNAVAILABLE};

/// The longest any one Redis call may take before the request is answered 503.
pub const DEADLINE: Duration = Duration::from_millis(800);

/// `SET` a session with `NX` (create) or `XX` (save), and its index entry with it.
/// KEYS[1]: the session; KEYS[2] (optional): the owner's index.
/// ARGV: the value, the expiry (Unix ms), `NX`/`XX`, the id hash, the index entry.
const WRITE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], ARGV[3], 'PXAT', ARGV[2]) then
  return 0
end
if #KEYS == 2 then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
  if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then
    redis.call('PEXPIREAT', KEYS[2], ARGV[2])
  end
end
return 1
";

static WRITE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(WRITE));

/// What a session key holds.
#[derive(Debug, Deserialize)]
struct Stored {
    /// Each scheme's copy as the JSON it holds (`copy::StoredData`).
    #[serde(deserialize_with = "super::copy::deserialize_data")]
    data: HashMap<String, serde_json::Value>,
    /// Unix seconds, the record's expiry.
    expires_at: i64,
    user_id: Option<i64>,
    device_pk: Option<i64>,
    handle: Option<String>,
}

/// [`Stored`] as written: the record's data borrowed, each copy embedded as its JSON.
#[derive(Serialize)]
struct StoredRef<'a> {
    data: super::copy::StoredData<'a>,
    expires_at: i64,
    user_id: Option<i64>,
    device_pk: Option<i64>,
    handle: Option<&'a str>,
}

/// An index entry: what the sessions list and sign-out everywhere select sessions by.
#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    device_pk: Option<i64>,
    handle: Option<String>,
}

#[derive(Clone)]
pub struct RedisSessionStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    secrets: Arc<dyn SecretSource>,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(format!("{UNAVAILABLE}{err}"))
}

fn decode(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Decode(err.to_string())
}

impl RedisSessionStore {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`); keys start with `prefix`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        secrets: Arc<dyn SecretSource>,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            // Reconnecting goes on in the background for as long as Redis is away; requests
            // meanwhile fail within DEADLINE instead of waiting for it.
            .set_number_of_retries(usize::MAX)
            .set_max_delay(Duration::from_secs(1));
        let mut connection =
            tokio::time::timeout(DEADLINE * 4, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "no answer from Redis in time"))
                })??;
        // The write script reads the index's expiry with PEXPIRETIME, which Redis 7 brought:
        // refuse at start rather than fail every login later. Asked of a key that cannot exist
        // (-2), which needs no more permission than the store itself (INFO would).
        let probe = format!("{prefix}pexpiretime-probe");
        let answer: redis::RedisResult<i64> =
            redis::cmd("PEXPIRETIME").arg(&probe).query_async(&mut connection).await;
        if let Err(err) = answer {
            if err.is_io_error() || err.is_timeout() || err.is_connection_refusal() {
                return Err(err);
            }
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "Redis 7 or later is needed (PEXPIRETIME)",
                err.to_string(),
            )));
        }
        Ok(Self { connection, prefix: prefix.into(), secrets })
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> session_store::Result<()> {
        let mut connection = self.connection.clone();
        self.bounded(redis::cmd("PING").query_async::<String>(&mut connection)).await.map(drop)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> session_store::Result<T> {
        match tokio::time::timeout(DEADLINE, call).await {
            Ok(Ok(answer)) => Ok(answer),
            // Redis away, or unable to write for now: the client's to retry (503).
            Ok(Err(err))
                if err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) =>
            {
                Err(unavailable(err))
            }
            // Anything else (a script error, a refused permission, a Redis too old for the
            // script) is a fault of the deployment: a 500 with the cause in the log.
            Ok(Err(err)) => Err(session_store::Error::Backend(err.to_string())),
            Err(_) => Err(unavailable("no answer within the deadline")),
        }
    }

    /// Sets a key that lives `seconds` unless it exists: whether it was set (the DPoP replay
    /// store: see `AnySessionStore::record_proof_once`).
    pub async fn record_once(&self, proof_hash: &str, seconds: i64) -> session_store::Result<bool> {
        let mut connection = self.connection.clone();
        let key = format!("{}dpop-proof:{proof_hash}", self.prefix);
        let mut set = redis::cmd("SET");
        set.arg(key).arg(1).arg("NX").arg("EX").arg(seconds);
        let answer: Option<String> = self.bounded(set.query_async(&mut connection)).await?;
        Ok(answer.is_some())
    }

    fn session_key(&self, id_hash: &str) -> String {
        format!("{}session:{id_hash}", self.prefix)
    }

    fn index_prefix(&self) -> String {
        format!("{}user-sessions:", self.prefix)
    }

    fn index_key(&self, user_id: i64) -> String {
        format!("{}{user_id}", self.index_prefix())
    }

    /// Writes `record` with `NX` or `XX`; whether the condition held.
    async fn write(&self, record: &Record, condition: &str) -> session_store::Result<bool> {
        let owner = record
            .data
            .get(OWNER_KEY)
            .map(|value| serde_json::from_value::<SessionOwner>(value.clone()))
            .transpose()
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let id_hash = storage_hash(&record.id.to_string());
        let stored = StoredRef {
            data: super::copy::StoredData(&record.data),
            expires_at: record.expiry_date.unix_timestamp(),
            user_id: owner.as_ref().map(|o| o.user_id),
            device_pk: owner.as_ref().and_then(|o| o.device_pk),
            handle: owner.as_ref().map(|o| o.handle.as_str()),
        };
        let entry =
            IndexEntry { device_pk: stored.device_pk, handle: stored.handle.map(str::to_owned) };
        let encode = |e: serde_json::Error| session_store::Error::Encode(e.to_string());
        let value = serde_json::to_string(&stored).map_err(encode)?;
        let entry = serde_json::to_string(&entry).map_err(encode)?;
        let expires_at_ms = stored.expires_at.saturating_mul(1000);
        let mut invocation = WRITE_SCRIPT.key(self.session_key(&id_hash));
        if let Some(user_id) = stored.user_id {
            invocation.key(self.index_key(user_id));
        }
        invocation.arg(value).arg(expires_at_ms).arg(condition).arg(&id_hash).arg(entry);
        let mut connection = self.connection.clone();
        let written: i64 = self.bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(written == 1)
    }

    /// The live sessions of `user_id`, pruning index entries whose session has gone.
    pub async fn of_user(&self, user_id: i64) -> session_store::Result<Vec<StoredSession>> {
        let mut connection = self.connection.clone();
        let index_key = self.index_key(user_id);
        let entries: HashMap<String, String> = self
            .bounded(redis::cmd("HGETALL").arg(&index_key).query_async(&mut connection))
            .await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<String> = entries.into_keys().collect();
        let keys: Vec<String> = hashes.iter().map(|h| self.session_key(h)).collect();
        let values: Vec<Option<String>> =
            self.bounded(redis::cmd("MGET").arg(&keys).query_async(&mut connection)).await?;
        let mut found = Vec::new();
        let mut gone = Vec::new();
        for (id_hash, value) in hashes.into_iter().zip(values) {
            let Some(value) = value else {
                gone.push(id_hash);
                continue;
            };
            // A value this store did not write (or an older layout) is dropped from the index
            // rather than failing the user's whole list and sign-out.
            let Ok(stored) = serde_json::from_str::<Stored>(&value) else {
                tracing::warn!(id_hash, "a session value that does not decode; left out");
                gone.push(id_hash);
                continue;
            };
            found.push(StoredSession {
                data: serde_json::to_string(&super::copy::StoredData(&stored.data))
                    .map_err(decode)?,
                id_hash,
                device_pk: stored.device_pk,
                handle: stored.handle,
            });
        }
        if !gone.is_empty() {
            self.bounded(
                redis::cmd("HDEL").arg(&index_key).arg(&gone).query_async::<i64>(&mut connection),
            )
            .await?;
        }
        Ok(found)
    }

    /// Deletes the sessions of `user_id` that `chosen` picks; how many there were.
    pub async fn end_of_user(
        &self,
        user_id: i64,
        chosen: impl Fn(&StoredSession) -> bool,
    ) -> session_store::Result<u64> {
        let ending: Vec<String> =
            self.of_user(user_id).await?.into_iter().filter(chosen).map(|s| s.id_hash).collect();
        if ending.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ending.iter().map(|h| self.session_key(h)).collect();
        let mut connection = self.connection.clone();
        let deleted: (i64, i64) = self
            .bounded(
                redis::pipe()
                    .atomic()
                    .del(&keys)
                    .hdel(self.index_key(user_id), &ending)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(u64::try_from(deleted.0).unwrap_or(0))
    }

    /// Deletes every session under this prefix (the demo's reset and "expire every session").
    pub async fn end_everyone(&self) -> session_store::Result<u64> {
        let mut connection = self.connection.clone();
        let mut ended = 0;
        // The prefix is the operator's: its glob characters must match only themselves.
        let literal: String = self
            .prefix
            .chars()
            .flat_map(|c| {
                let escape = matches!(c, '*' | '?' | '[' | ']' | '\\');
                escape.then_some('\\').into_iter().chain(std::iter::once(c))
            })
            .collect();
        let patterns =
            [(format!("{literal}session:*"), true), (format!("{literal}user-sessions:*"), false)];
        for (pattern, counted) in patterns {
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .bounded(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(500)
                            .query_async(&mut connection),
                    )
                    .await?;
                if !keys.is_empty() {
                    let deleted: i64 = self
                        .bounded(redis::cmd("DEL").arg(&keys).query_async(&mut connection))
                        .await?;
                    if counted {
                        ended += u64::try_from(deleted).unwrap_or(0);
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(ended)
    }
}

#[async_trait::async_trait]
impl session_store::SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let mut bytes = [0u8; 16];
            self.secrets
                .fill(&mut bytes)
                .map_err(|e| session_store::Error::Backend(e.to_string()))?;
            record.id = Id(i128::from_le_bytes(bytes));
            if self.write(record, "NX").await? {
                return Ok(());
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if !self.write(record, "XX").await? {
            // As in the database store: the session ended while the request ran; stay ended.
            super::note_save_found_no_session();
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut connection = self.connection.clone();
        let key = self.session_key(&storage_hash(&id.to_string()));
        let value: Option<String> =
            self.bounded(redis::cmd("GET").arg(key).query_async(&mut connection)).await?;
        let Some(value) = value else { return Ok(None) };
        let stored: Stored = serde_json::from_str(&value).map_err(decode)?;
        let expiry_date =
            time::OffsetDateTime::from_unix_timestamp(stored.expires_at).map_err(decode)?;
        Ok(Some(Record { id: *id, data: stored.data, expiry_date }))
    }

    /// Deletes the session and, in the same transaction, its entry in its owner's index. The
    /// owner is read from the session first, so every key a command touches is named up front.
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let id_hash = storage_hash(&id.to_string());
        let key = self.session_key(&id_hash);
        let mut connection = self.connection.clone();
        let value: Option<String> =
            self.bounded(redis::cmd("GET").arg(&key).query_async(&mut connection)).await?;
        let Some(value) = value else { return Ok(()) };
        let mut transaction = redis::pipe();
        transaction.atomic().del(&key).ignore();
        // A session's owner never changes, so reading it outside the transaction is safe; a value
        // that does not decode has no index entry worth removing.
        if let Some(user_id) = serde_json::from_str::<Stored>(&value).ok().and_then(|s| s.user_id) {
            transaction.hdel(self.index_key(user_id), &id_hash).ignore();
        }
        self.bounded(transaction.query_async::<()>(&mut connection)).await
    }
}
