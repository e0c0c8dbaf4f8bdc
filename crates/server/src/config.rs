//! Command line and environment. Every flag can also be given as a `TOKENLAB_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "tokenlab",
    version,
    about = "A live lab of login tokens: device token, session id, access + refresh"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve the API and the lab page.
    Serve(Box<Settings>),
    /// Manage the production profile's key directory (`--keys-dir`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A DPoP client (RFC 9449) for curl: a proof key, and proofs signed by it.
    #[command(subcommand)]
    Dpop(DpopCommand),
}

#[derive(Debug, Subcommand)]
pub enum DpopCommand {
    /// Write a new proof key (Ed25519, PKCS#8 PEM, owner-only) to FILE; prints its thumbprint.
    Key {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a proof of one request, signed by the key in FILE, for the `DPoP` header.
    Proof {
        #[arg(long)]
        key: PathBuf,
        /// The request's method, as sent (`GET`, `POST`).
        #[arg(long)]
        method: String,
        /// The request's absolute URL, e.g. `http://127.0.0.1:3000/api/jwt/me`.
        #[arg(long)]
        url: String,
        /// The access token the request sends beside the proof (`Authorization: DPoP …`).
        #[arg(long, allow_hyphen_values = true)]
        access_token: Option<String>,
        /// The server's latest `DPoP-Nonce`. Base64url, so it may start with `-`: taken as is.
        #[arg(long, allow_hyphen_values = true)]
        nonce: Option<String>,
        /// Seconds to add to this machine's clock for `iat`: the demo clock's `offset_seconds`
        /// when it was moved (`GET /api/demo/clock`).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_offset: i64,
        /// `iat` itself, in Unix seconds, instead of this machine's clock: the server's "now"
        /// (the demo clock's `now`), or a skewed clock on purpose.
        #[arg(long, conflicts_with = "clock_offset", allow_hyphen_values = true)]
        iat: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new Ed25519 signing key (PKCS#8 PEM) into DIR, and the refresh-derivation key if DIR
    /// has none. After a restart the new key signs; the older ones keep verifying until their files
    /// are removed.
    Generate {
        /// The directory `serve --keys-dir` reads; created (owner-only) if missing.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// The lab: a movable clock, a seeded account, plain-http cookies.
    Demo,
    /// No demo features; refuses to start unless served over https.
    Production,
}

/// Whether DPoP proofs must carry a server nonce (RFC 9449 §8–9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DpopNonces {
    /// Every proof names a nonce the server handed out in the last five to ten minutes: proofs
    /// made in advance by a script that has since lost the page are worthless.
    Required,
    /// Proofs need no nonce: one round trip fewer, and pre-made proofs work for a minute.
    Off,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TOKENLAB_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "TOKENLAB_DATABASE_URL", default_value = "sqlite://data/tokenlab.db")]
    pub database_url: String,

    #[arg(long, env = "TOKENLAB_PROFILE", value_enum, default_value_t = Profile::Demo)]
    pub profile: Profile,

    /// The origin browsers reach the server at. Defaults to `http://<bind address>`.
    #[arg(long, env = "TOKENLAB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Where the built front end (`pkg/`, `api-docs/`) lives.
    #[arg(long, env = "TOKENLAB_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// How long without a request before a server session expires (`30m`, `1800`: a bare number is
    /// seconds; every duration flag takes the same forms).
    #[arg(long, env = "TOKENLAB_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_seconds)]
    pub session_idle_timeout: u32,

    /// How long after login a server session expires, however active.
    #[arg(long, env = "TOKENLAB_SESSION_ABSOLUTE_TIMEOUT", default_value = "12h", value_parser = parse_seconds)]
    pub session_absolute_timeout: u32,

    /// Failed logins for one account from one client address within `--login-window` before
    /// that client's further attempts on it get 429 (other clients are not affected).
    #[arg(long, env = "TOKENLAB_LOGIN_MAX_FAILURES", default_value_t = 10)]
    pub login_max_failures: u32,

    /// Failed logins per client address within `--login-window` before further attempts get 429.
    #[arg(long, env = "TOKENLAB_LOGIN_MAX_FAILURES_PER_CLIENT", default_value_t = 100)]
    pub login_max_failures_per_client: u32,

    /// The window failed logins are counted in, per client and per account and client.
    #[arg(long, env = "TOKENLAB_LOGIN_WINDOW", default_value = "15m", value_parser = parse_seconds)]
    pub login_window: u32,

    /// Failed logins for one account from all clients together within
    /// `--login-account-window`: the ceiling that stops a guesser spread over many addresses.
    #[arg(long, env = "TOKENLAB_LOGIN_ACCOUNT_CEILING", default_value_t = 100)]
    pub login_account_ceiling: u32,

    #[arg(long, env = "TOKENLAB_LOGIN_ACCOUNT_WINDOW", default_value = "1h", value_parser = parse_seconds)]
    pub login_account_window: u32,

    /// Registrations from one client address within `--registration-window` before further
    /// ones get 429.
    #[arg(long, env = "TOKENLAB_REGISTRATIONS_PER_CLIENT", default_value_t = 20)]
    pub registrations_per_client: u32,

    #[arg(long, env = "TOKENLAB_REGISTRATION_WINDOW", default_value = "1h", value_parser = parse_seconds)]
    pub registration_window: u32,

    /// Password hashes (argon2id, 19 MiB each) computed at once; default: the number of cores.
    #[arg(long, env = "TOKENLAB_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// The scheduling niceness of the password-hashing workers (0–19, Linux): higher lets
    /// requests that carry a token run first on a busy core, at the price of slower logins while
    /// the machine is saturated.
    #[arg(long, env = "TOKENLAB_HASH_NICE", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub hash_nice: i32,

    /// How long a login, registration or password change waits for a free hashing slot before
    /// it is answered 503 `server_busy`. Five seconds lets 64 logins that arrive at once on one
    /// core all be served where a hash takes up to about 75 ms (2 s turned some of them away on
    /// a machine whose hashes took 38 ms, #14), and still bounds how long a flood is queued.
    #[arg(long, env = "TOKENLAB_HASH_QUEUE_TIMEOUT", default_value = "5s", value_parser = parse_seconds)]
    pub hash_queue_timeout: u32,

    /// How long a one-time form token stays usable.
    #[arg(long, env = "TOKENLAB_FORM_TOKEN_LIFETIME", default_value = "1h", value_parser = parse_seconds)]
    pub form_token_lifetime: u32,

    /// How long an Idempotency-Key's response is kept for replay.
    #[arg(long, env = "TOKENLAB_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = parse_seconds)]
    pub idempotency_retention: u32,

    /// After how long a request stuck "in flight" (a crash) releases its Idempotency-Key.
    #[arg(long, env = "TOKENLAB_IDEMPOTENCY_LEASE", default_value = "60s", value_parser = parse_seconds)]
    pub idempotency_lease: u32,

    /// How long a hardened device token lives, from login; re-attaching never extends it.
    #[arg(long, env = "TOKENLAB_DEVICE_TOKEN_LIFETIME", default_value = "60days", value_parser = parse_seconds)]
    pub device_token_lifetime: u32,

    /// How long a replaced hardened device secret is still accepted (requests in flight).
    #[arg(long, env = "TOKENLAB_DEVICE_ROTATION_GRACE", default_value = "30s", value_parser = parse_seconds)]
    pub device_rotation_grace: u32,

    /// Lifetimes of access and refresh tokens: `article` (30 d / 60 d), `recommended`
    /// (15 min; refresh 14 d idle, 60 d absolute), or a preset modelled on a well-known auth
    /// server's defaults (`keycloak`, `auth0`, `cognito`). Default: `article` in the demo profile,
    /// `recommended` in production. The demo can switch presets at runtime (`PUT /api/demo/policy`).
    #[arg(long, env = "TOKENLAB_TOKEN_POLICY")]
    pub token_policy: Option<String>,

    /// Whether DPoP proofs must carry the server's nonce (`required`), or not (`off`). Nonces are
    /// derived from the refresh-derivation key and the time, so every instance accepts every
    /// instance's, and nothing is stored.
    #[arg(long, env = "TOKENLAB_DPOP_NONCES", value_enum, default_value_t = DpopNonces::Required)]
    pub dpop_nonces: DpopNonces,

    /// Where server sessions live: `database` (the default: the application database), or
    /// `redis://HOST:PORT[/DB]`, for several instances that share sessions in Redis.
    #[arg(long, env = "TOKENLAB_SESSION_STORE", default_value = "database",
          value_parser = parse_session_store)]
    pub session_store: SessionStoreChoice,

    /// The prefix of every Redis key this deployment writes, so that several can share one Redis.
    /// Not empty: the demo's "expire every session" deletes every session under it.
    #[arg(long, env = "TOKENLAB_REDIS_PREFIX", default_value = "tokenlab:",
          value_parser = parse_redis_prefix)]
    pub redis_prefix: String,

    /// This instance's name, sent as `X-Tokenlab-Instance` on every response so that a client
    /// behind a load balancer can tell who answered (default: the host name and the bound port).
    /// Visible ASCII, at most 64 characters.
    #[arg(long, env = "TOKENLAB_INSTANCE", value_parser = parse_instance)]
    pub instance: Option<String>,

    /// Addresses of the reverse proxies whose `X-Forwarded-For` is believed (comma-separated),
    /// or `none`. Required in production: behind a proxy nobody named, every user would share the
    /// proxy's address, and so one bucket of every throttle.
    #[arg(long, env = "TOKENLAB_TRUSTED_PROXIES", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,

    /// In the production profile, accept `--token-policy article`: month-long access tokens that a
    /// resource server without tokenlab's revocation check could not recall. For teaching
    /// deployments only.
    #[arg(long, env = "TOKENLAB_ALLOW_ARTICLE_LIFETIMES")]
    pub allow_article_lifetimes: bool,

    /// In the production profile, accept device logins in the article's mode "as written" (the
    /// device id is a permanent token). For teaching deployments only; the demo profile always
    /// accepts it.
    #[arg(long, env = "TOKENLAB_ALLOW_AS_WRITTEN_DEVICES")]
    pub allow_as_written_devices: bool,

    /// Where the production profile's keys are: Ed25519 signing keys (`*.pem`; the file name that
    /// sorts last signs, all verify) and `refresh-derivation.key`, written by `tokenlab keys
    /// generate`. Required in production; the demo profile keeps its keys in its database instead.
    #[arg(long, env = "TOKENLAB_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,

    /// A connection whose request headers are not complete within this long is closed.
    #[arg(long, env = "TOKENLAB_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_seconds)]
    pub header_timeout: u32,

    /// A request body not received completely within this long answers 408.
    #[arg(long, env = "TOKENLAB_BODY_TIMEOUT", default_value = "30s", value_parser = parse_seconds)]
    pub body_timeout: u32,

    /// A request whose answer is not ready within this long answers 503.
    #[arg(long, env = "TOKENLAB_HANDLER_TIMEOUT", default_value = "30s", value_parser = parse_seconds)]
    pub handler_timeout: u32,

    /// Connections served at once; further ones wait in the kernel's accept queue until one ends.
    #[arg(long, env = "TOKENLAB_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Database connections this instance keeps open at most. Several instances on one PostgreSQL
    /// share its `max_connections`: keep the sum of theirs below it. On an SQLite file a second
    /// pool of as many carries the writes that skip the flush (ADR 33).
    #[arg(long, env = "TOKENLAB_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// A request that waits this long for a free database connection answers 503
    /// `database_unavailable` instead of waiting on (the pool is exhausted, or the database
    /// does not answer).
    #[arg(long, env = "TOKENLAB_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_seconds)]
    pub db_acquire_timeout: u32,

    /// Password of the seeded demo account `alice` (demo profile only).
    #[arg(long, env = "TOKENLAB_DEMO_PASSWORD", default_value = "wonderland-demo")]
    pub demo_password: SecretString,
}

/// `--session-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStoreChoice {
    Database,
    Redis(String),
}

fn parse_session_store(text: &str) -> Result<SessionStoreChoice, String> {
    if text == "database" {
        Ok(SessionStoreChoice::Database)
    } else if text.starts_with("redis://") {
        Ok(SessionStoreChoice::Redis(text.to_owned()))
    } else {
        // No `rediss://`: the Redis client is built without TLS (Redis on the same host or a
        // private network, or behind a TLS tunnel).
        Err("`database` or a redis:// URL".to_owned())
    }
}

fn parse_redis_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        Err("a non-empty prefix without spaces, such as `tokenlab:`".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

fn parse_instance(text: &str) -> Result<String, String> {
    let fits = !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_graphic());
    if fits { Ok(text.to_owned()) } else { Err("visible ASCII, 1 to 64 characters".to_owned()) }
}

/// The reverse proxies whose `X-Forwarded-For` is believed; empty for `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<std::net::IpAddr>);

fn parse_trusted_proxies(text: &str) -> Result<TrustedProxies, String> {
    if text.trim() == "none" {
        return Ok(TrustedProxies::default());
    }
    text.split(',')
        .map(|address| address.trim().parse().map_err(|e| format!("{address}: {e}")))
        .collect::<Result<_, _>>()
        .map(TrustedProxies)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "the production profile needs --public-url (TOKENLAB_PUBLIC_URL) starting with https://"
    )]
    ProductionWithoutHttps,
    #[error(
        "the production profile needs --trusted-proxies (TOKENLAB_TRUSTED_PROXIES): the addresses \
         of the reverse proxies in front of it, comma-separated, or `none` when clients connect \
         directly"
    )]
    ProductionWithoutTrustedProxies,
    #[error(
        "--token-policy article (30-day access tokens) is refused in production; choose another \
         preset, or start with --allow-article-lifetimes for a teaching deployment"
    )]
    ArticleLifetimesInProduction,
    #[error(
        "--token-policy must be one of article, recommended, keycloak, auth0, cognito — not {0}"
    )]
    UnknownTokenPolicy(String),
    #[error(
        "the production profile needs --keys-dir (TOKENLAB_KEYS_DIR): a directory of signing keys \
         that `tokenlab keys generate --dir DIR` creates"
    )]
    ProductionWithoutKeysDir,
    #[error(
        "--keys-dir is for the production profile; the demo profile keeps its keys in its database, \
         where the lab rotates and retires them"
    )]
    KeysDirInDemo,
    #[error(
        "--header-timeout, --body-timeout, --handler-timeout and --db-acquire-timeout must be at least one second"
    )]
    ZeroTimeout,
    #[error("session timeouts must be at least one second, and idle no longer than absolute")]
    BadSessionTimeouts,
    #[error("--public-url must look like http://host[:port] or https://host[:port]: {0}")]
    BadPublicUrl(String),
}

impl Settings {
    /// Whether device logins in the article's insecure mode are accepted.
    pub fn as_written_devices_allowed(&self) -> bool {
        self.profile == Profile::Demo || self.allow_as_written_devices
    }

    /// Settings for tests and embedding: every flag's default as `tokenlab serve` has it (read
    /// from the same declarations, never from `TOKENLAB_*` variables), any free port on loopback,
    /// and the given database.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        let command = Self::augment_args(clap::Command::new("tokenlab-tests"))
            .mut_args(|arg| arg.env(None::<&str>));
        let database_url = database_url.into();
        let args = ["tokenlab-tests", "--bind", "127.0.0.1:0", "--database-url", &database_url];
        command
            .try_get_matches_from(args)
            .and_then(|matches| Self::from_arg_matches(&matches))
            .unwrap_or_else(|err| unreachable!("the defaults parse: {err}"))
    }

    /// `--instance`, or the host name and the port the server is bound to.
    pub fn instance_name(&self, bound: std::net::SocketAddr) -> String {
        if let Some(name) = &self.instance {
            return name.clone();
        }
        // Linux keeps it here; elsewhere the port alone still tells local instances apart.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| parse_instance(h).is_ok())
            .unwrap_or_else(|| "tokenlab".to_owned());
        format!("{host}:{}", bound.port())
    }

    /// Refuses settings that would be unsafe, before anything is opened or bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains('/')) {
                return Err(ConfigError::BadPublicUrl(url.clone()));
            }
        }
        if self.session_idle_timeout == 0
            || self.session_idle_timeout > self.session_absolute_timeout
        {
            return Err(ConfigError::BadSessionTimeouts);
        }
        if let Some(name) = &self.token_policy
            && tokenlab_core::bearer::TokenPolicy::by_name(name).is_none()
        {
            return Err(ConfigError::UnknownTokenPolicy(name.clone()));
        }
        if self.profile == Profile::Production
            && !self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        {
            return Err(ConfigError::ProductionWithoutHttps);
        }
        if [self.header_timeout, self.body_timeout, self.handler_timeout, self.db_acquire_timeout]
            .contains(&0)
        {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.profile == Profile::Production && self.trusted_proxies.is_none() {
            return Err(ConfigError::ProductionWithoutTrustedProxies);
        }
        match (self.profile, &self.keys_dir) {
            (Profile::Production, None) => return Err(ConfigError::ProductionWithoutKeysDir),
            (Profile::Demo, Some(_)) => return Err(ConfigError::KeysDirInDemo),
            _ => {}
        }
        if self.profile == Profile::Production
            && self.token_policy.as_deref() == Some("article")
            && !self.allow_article_lifetimes
        {
            return Err(ConfigError::ArticleLifetimesInProduction);
        }
        Ok(())
    }

    /// The origin the browser uses, once the real port is known.
    pub fn public_origin(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Origins whose pages may send state-changing requests. Without a configured public URL on a
    /// loopback address, `localhost` and `127.0.0.1` name the same server, so both are accepted.
    pub fn allowed_origins(&self, bound: SocketAddr) -> Vec<String> {
        let mut origins = vec![self.public_origin(bound)];
        if self.public_url.is_none() && bound.ip().is_loopback() {
            origins.push(format!("http://localhost:{}", bound.port()));
            origins.push(format!("http://127.0.0.1:{}", bound.port()));
            origins.dedup();
        }
        origins
    }

    pub fn session_policy(&self) -> tokenlab_core::session::SessionPolicy {
        tokenlab_core::session::SessionPolicy {
            idle_timeout: exact(self.session_idle_timeout),
            absolute_timeout: exact(self.session_absolute_timeout),
        }
    }

    pub fn submit_policy(&self) -> tokenlab_core::submit::SubmitPolicy {
        tokenlab_core::submit::SubmitPolicy {
            form_token_lifetime: exact(self.form_token_lifetime),
            idempotency_retention: exact(self.idempotency_retention),
            idempotency_lease: exact(self.idempotency_lease),
        }
    }

    pub fn device_policy(&self) -> tokenlab_core::device::DevicePolicy {
        tokenlab_core::device::DevicePolicy {
            token_lifetime: exact(self.device_token_lifetime),
            rotation_grace: exact(self.device_rotation_grace),
        }
    }

    pub fn token_policy(&self) -> tokenlab_core::bearer::TokenPolicy {
        use tokenlab_core::bearer::TokenPolicy;
        let default = match self.profile {
            Profile::Demo => TokenPolicy::ARTICLE,
            Profile::Production => TokenPolicy::RECOMMENDED,
        };
        self.token_policy.as_deref().and_then(TokenPolicy::by_name).unwrap_or(default)
    }

    pub fn login_limits(&self) -> crate::auth::password::LoginLimits {
        use tokenlab_core::throttle::FailureLimit;
        let window = exact(self.login_window);
        crate::auth::password::LoginLimits {
            per_client: FailureLimit { max_failures: self.login_max_failures_per_client, window },
            per_account_and_client: FailureLimit { max_failures: self.login_max_failures, window },
            per_account: FailureLimit {
                max_failures: self.login_account_ceiling,
                window: exact(self.login_account_window),
            },
            registrations_per_client: FailureLimit {
                max_failures: self.registrations_per_client,
                window: exact(self.registration_window),
            },
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed (none unless configured).
    pub fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        self.trusted_proxies.as_ref().map_or(&[], |t| t.0.as_slice())
    }
}

/// A duration flag, in whole seconds: a bare number of seconds (`1800`), or `humantime`'s forms
/// (`30m`, `12h`, `60days`, `1h 30m`).
fn parse_seconds(text: &str) -> Result<u32, String> {
    let duration = match text.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string())?,
    };
    if duration.subsec_nanos() != 0 {
        return Err("durations are whole seconds".to_owned());
    }
    u32::try_from(duration.as_secs()).map_err(|_| "at most 136 years".to_owned())
}

/// A flag's seconds as the rules measure time.
fn exact(seconds: u32) -> time::Duration {
    time::Duration::seconds(seconds.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_or_token_starting_with_a_dash_is_a_value_not_a_flag() {
        // Base64url nonces start with `-` one time in 64.
        let cli = Cli::try_parse_from([
            "tokenlab",
            "dpop",
            "proof",
            "--key",
            "k.pem",
            "--method",
            "GET",
            "--url",
            "http://127.0.0.1:3000/api/jwt/me",
            "--nonce",
            "-QSmHa3l5QB1",
            "--access-token",
            "-x.y.z",
            "--iat",
            "-5",
        ])
        .map_err(|e| e.to_string());
        let Ok(Cli { command: Command::Dpop(DpopCommand::Proof { nonce, access_token, iat, .. }) }) =
            cli
        else {
            panic!("not parsed as a proof: {cli:?}");
        };
        assert_eq!(
            (nonce.as_deref(), access_token.as_deref(), iat),
            (Some("-QSmHa3l5QB1"), Some("-x.y.z"), Some(-5))
        );
    }

    #[test]
    fn durations_parse_as_seconds_or_human_units() {
        let cases = [
            ("1800", Some(1800)),
            ("30m", Some(1800)),
            ("12h", Some(43_200)),
            ("60days", Some(5_184_000)),
            ("1h 30m", Some(5400)),
            ("soon", None),
            ("-5", None),
            ("1500ms", None),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse_seconds(text).ok(), seconds, "{text:?}");
        }
    }

    #[test]
    fn trusted_proxies_are_a_list_or_none() {
        let cases: [(&str, Option<Vec<&str>>); 4] = [
            ("none", Some(vec![])),
            ("10.0.0.1", Some(vec!["10.0.0.1"])),
            ("10.0.0.1, ::1", Some(vec!["10.0.0.1", "::1"])),
            ("10.0.0.1,proxy", None),
        ];
        for (text, expected) in cases {
            let expected = expected
                .map(|list| TrustedProxies(list.iter().filter_map(|a| a.parse().ok()).collect()));
            assert_eq!(parse_trusted_proxies(text).ok(), expected, "{text:?}");
        }
    }

    #[test]
    fn test_settings_are_the_flags_defaults() {
        let settings = Settings::for_tests("sqlite::memory:");
        assert_eq!(settings.bind.port(), 0);
        assert_eq!(settings.profile, Profile::Demo);
        assert_eq!(settings.session_idle_timeout, 30 * 60);
        assert_eq!(settings.device_token_lifetime, 60 * 86_400);
        assert_eq!(settings.login_max_failures, 10);
    }

    #[test]
    fn validation() {
        let demo = Settings::for_tests("sqlite::memory:");
        let cases: Vec<(Profile, Option<&str>, Result<(), ConfigError>)> = vec![
            (Profile::Demo, None, Ok(())),
            (Profile::Demo, Some("http://localhost:3000"), Ok(())),
            (Profile::Demo, Some("https://lab.example"), Ok(())),
            (
                Profile::Demo,
                Some("lab.example"),
                Err(ConfigError::BadPublicUrl("lab.example".into())),
            ),
            (
                Profile::Demo,
                Some("https://lab.example/x"),
                Err(ConfigError::BadPublicUrl("https://lab.example/x".into())),
            ),
            (Profile::Production, None, Err(ConfigError::ProductionWithoutHttps)),
            (
                Profile::Production,
                Some("http://lab.example"),
                Err(ConfigError::ProductionWithoutHttps),
            ),
            (Profile::Production, Some("https://lab.example"), Ok(())),
        ];
        for (profile, url, expected) in cases {
            let settings = Settings {
                profile,
                public_url: url.map(str::to_owned),
                trusted_proxies: Some(TrustedProxies::default()),
                keys_dir: (profile == Profile::Production).then(|| "keys".into()),
                ..demo.clone()
            };
            assert_eq!(settings.validate(), expected, "{profile:?} {url:?}");
        }
        let without_proxies = Settings {
            profile: Profile::Production,
            public_url: Some("https://lab.example".into()),
            ..demo.clone()
        };
        assert_eq!(without_proxies.validate(), Err(ConfigError::ProductionWithoutTrustedProxies));
        for (allowed, expected) in
            [(false, Err(ConfigError::ArticleLifetimesInProduction)), (true, Ok(()))]
        {
            let article = Settings {
                profile: Profile::Production,
                public_url: Some("https://lab.example".into()),
                trusted_proxies: Some(TrustedProxies::default()),
                token_policy: Some("article".into()),
                allow_article_lifetimes: allowed,
                keys_dir: Some("keys".into()),
                ..demo.clone()
            };
            assert_eq!(article.validate(), expected, "allowed: {allowed}");
        }
        let without_keys = Settings {
            profile: Profile::Production,
            public_url: Some("https://lab.example".into()),
            trusted_proxies: Some(TrustedProxies::default()),
            ..demo.clone()
        };
        assert_eq!(without_keys.validate(), Err(ConfigError::ProductionWithoutKeysDir));
        let demo_with_keys = Settings { keys_dir: Some("keys".into()), ..demo.clone() };
        assert_eq!(demo_with_keys.validate(), Err(ConfigError::KeysDirInDemo));
        for zero in [
            Settings { header_timeout: 0, ..demo.clone() },
            Settings { body_timeout: 0, ..demo.clone() },
            Settings { handler_timeout: 0, ..demo.clone() },
        ] {
            assert_eq!(zero.validate(), Err(ConfigError::ZeroTimeout));
        }
    }
}
