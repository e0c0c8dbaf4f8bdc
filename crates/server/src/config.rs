//! Command line and environment. Every flag can also be given as a `TOKENLAB_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Serve(Settings),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// The lab: a movable clock, a seeded account, plain-http cookies.
    Demo,
    /// No demo features; refuses to start unless served over https.
    Production,
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

    /// Password of the seeded demo account `alice` (demo profile only).
    #[arg(long, env = "TOKENLAB_DEMO_PASSWORD", default_value = "wonderland-demo")]
    pub demo_password: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "the production profile needs --public-url (TOKENLAB_PUBLIC_URL) starting with https://"
    )]
    ProductionWithoutHttps,
    #[error("--public-url must look like http://host[:port] or https://host[:port]: {0}")]
    BadPublicUrl(String),
}

impl Settings {
    /// Settings for tests and embedding: demo profile, any free port, the given database.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            profile: Profile::Demo,
            public_url: None,
            site_root: PathBuf::from("target/site"),
            demo_password: "wonderland-demo".to_owned(),
        }
    }

    /// Refuses settings that would be unsafe, before anything is opened or bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains('/')) {
                return Err(ConfigError::BadPublicUrl(url.clone()));
            }
        }
        if self.profile == Profile::Production
            && !self.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        {
            return Err(ConfigError::ProductionWithoutHttps);
        }
        Ok(())
    }

    /// The origin the browser uses, once the real port is known.
    pub fn public_origin(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let settings = Settings { profile, public_url: url.map(str::to_owned), ..demo.clone() };
            assert_eq!(settings.validate(), expected, "{profile:?} {url:?}");
        }
    }
}
