//! Production keys in a directory (`--keys-dir`), written by `tokenlab keys generate`.
//!
//! - Every `*.pem` file is an Ed25519 private key (PKCS#8 PEM, as `keys generate` or
//!   `openssl genpkey -algorithm ed25519` writes it). All of them verify tokens and appear in the
//!   JWKS; the one whose file name sorts last signs. `keys generate` names files by their UTC
//!   creation time, so "sorts last" is "newest".
//! - `refresh-derivation.key` holds the HMAC key (base64, at least 32 bytes) that derives a refresh
//!   token's child.
//!
//! Rotating is: generate a new key, restart every instance (the new key signs; the old one still
//! verifies the tokens it signed). Retiring is: once no token it signed can still be alive (the
//! longest access-token lifetime after the rotation), delete its file and restart. The directory
//! is read once at start, so every instance started from the same directory agrees.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest as _, Sha256};
use time::macros::format_description;
use tokenlab_core::Timestamp;
use tokenlab_core::random::{SecretSource, SecretSourceError};
use zeroize::Zeroizing;

pub const REFRESH_KEY_FILE: &str = "refresh-derivation.key";
const REFRESH_KEY_MIN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the keys directory {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{} is not an Ed25519 private key in PKCS#8 PEM: {detail}", file.display())]
    NotEd25519 { file: PathBuf, detail: String },
    #[error(
        "{} holds no signing key (*.pem); create one with `tokenlab keys generate --dir {}`",
        dir.display(), dir.display()
    )]
    NoSigningKey { dir: PathBuf },
    #[error(
        "{} has no {REFRESH_KEY_FILE}; `tokenlab keys generate --dir {}` creates it",
        dir.display(), dir.display()
    )]
    NoRefreshKey { dir: PathBuf },
    #[error("{} must hold at least {REFRESH_KEY_MIN_BYTES} bytes, base64-encoded", file.display())]
    BadRefreshKey { file: PathBuf },
    #[error("cannot write {}: {source}", file.display())]
    Write { file: PathBuf, source: std::io::Error },
    #[error("no randomness for a new key: {0}")]
    Random(#[from] SecretSourceError),
}

/// One signing key read from its file.
pub struct FileKey {
    /// The RFC 7638 thumbprint of its public key: the same on every instance and after every
    /// restart, and it says nothing about the key beyond naming it.
    pub kid: String,
    pub file: PathBuf,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key, base64url, as a JWK's `x`.
    pub public_x: String,
}

/// The keys of one `--keys-dir`, read once.
pub struct KeyDirectory {
    /// Ordered by file name; the last signs.
    signing: Vec<FileKey>,
    by_kid: HashMap<String, usize>,
    refresh_derivation: Zeroizing<Vec<u8>>,
}

impl KeyDirectory {
    pub fn load(dir: &Path) -> Result<Self, KeyFileError> {
        let read_dir = |source| KeyFileError::ReadDir { dir: dir.to_owned(), source };
        let mut pem_files = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().is_some_and(|ext| ext == "pem") {
                pem_files.push(path);
            }
        }
        pem_files.sort();
        let signing = pem_files.into_iter().map(read_signing_key).collect::<Result<Vec<_>, _>>()?;
        if signing.is_empty() {
            return Err(KeyFileError::NoSigningKey { dir: dir.to_owned() });
        }
        let by_kid = signing.iter().enumerate().map(|(i, key)| (key.kid.clone(), i)).collect();
        let refresh_derivation = read_refresh_key(dir)?;
        Ok(Self { signing, by_kid, refresh_derivation })
    }

    pub fn newest(&self) -> &FileKey {
        // `load` refuses a directory without a signing key, so there is a last one.
        &self.signing[self.signing.len() - 1]
    }

    pub fn newest_first(&self) -> impl Iterator<Item = &FileKey> {
        self.signing.iter().rev()
    }

    pub fn by_kid(&self, kid: &str) -> Option<&FileKey> {
        self.by_kid.get(kid).map(|&i| &self.signing[i])
    }

    pub fn refresh_derivation_key(&self) -> &[u8] {
        &self.refresh_derivation
    }
}

fn read_signing_key(file: PathBuf) -> Result<FileKey, KeyFileError> {
    let pem = Zeroizing::new(
        fs::read_to_string(&file)
            .map_err(|source| KeyFileError::Read { file: file.clone(), source })?,
    );
    let key = SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| KeyFileError::NotEd25519 { file: file.clone(), detail: e.to_string() })?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyFileError::NotEd25519 { file: file.clone(), detail: e.to_string() })?;
    let public = key.verifying_key().to_bytes();
    let public_x = URL_SAFE_NO_PAD.encode(public);
    Ok(FileKey {
        kid: thumbprint(&public_x),
        file,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        decoding: DecodingKey::from_ed_der(&public),
        public_x,
    })
}

fn read_refresh_key(dir: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let file = dir.join(REFRESH_KEY_FILE);
    let text = match fs::read_to_string(&file) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::NoRefreshKey { dir: dir.to_owned() });
        }
        Err(source) => return Err(KeyFileError::Read { file, source }),
    };
    match STANDARD.decode(text.trim()) {
        Ok(bytes) if bytes.len() >= REFRESH_KEY_MIN_BYTES => Ok(Zeroizing::new(bytes)),
        _ => Err(KeyFileError::BadRefreshKey { file }),
    }
}

/// RFC 7638: SHA-256 over the required members of the JWK, in lexicographic order, no spaces.
fn thumbprint(public_x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// What `keys generate` wrote.
#[derive(Debug)]
pub struct Generated {
    pub signing_file: PathBuf,
    pub kid: String,
    /// Whether the refresh-derivation key was created now (it is kept when it exists).
    pub refresh_key_file: Option<PathBuf>,
}

/// Writes a new signing key into `dir` (created if missing), named by `now` so it sorts after
/// every earlier one, and the refresh-derivation key if the directory has none. Files are created
/// new (never overwritten) and, on Unix, readable by their owner only.
pub fn generate(
    dir: &Path,
    now: Timestamp,
    secrets: &dyn SecretSource,
) -> Result<Generated, KeyFileError> {
    create_private_dir(dir)
        .map_err(|source| KeyFileError::Write { file: dir.to_owned(), source })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    secrets.fill(seed.as_mut())?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyFileError::NotEd25519 { file: dir.to_owned(), detail: e.to_string() })?;
    let kid = thumbprint(&URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()));
    let stamp = now
        .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    // The kid's prefix keeps two keys generated within one second apart.
    let signing_file = dir.join(format!("signing-{stamp}-{}.pem", &kid[..8]));
    write_private_file(&signing_file, pem.as_bytes())?;

    let refresh_file = dir.join(REFRESH_KEY_FILE);
    let refresh_key_file = if refresh_file.exists() {
        None
    } else {
        let mut bytes = Zeroizing::new([0u8; REFRESH_KEY_MIN_BYTES]);
        secrets.fill(bytes.as_mut())?;
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(bytes.as_ref())));
        write_private_file(&refresh_file, text.as_bytes())?;
        Some(refresh_file)
    };
    Ok(Generated { signing_file, kid, refresh_key_file })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

pub(crate) fn write_private_file(file: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut handle = options.open(file)?;
        handle.write_all(contents)?;
        handle.sync_all()
    };
    write().map_err(|source| KeyFileError::Write { file: file.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct, predictable bytes: each fill continues where the previous one stopped.
    struct Counting(std::sync::atomic::AtomicU8);

    impl SecretSource for Counting {
        fn fill(&self, dest: &mut [u8]) -> Result<(), SecretSourceError> {
            for byte in dest {
                *byte = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
    }

    #[test]
    fn the_thumbprint_is_rfc_8037s_example() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        assert_eq!(thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn generated_keys_load_and_the_newest_signs() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Counting(std::sync::atomic::AtomicU8::new(0));
        let t0 = Timestamp::from_unix_timestamp(1_800_000_000).unwrap();
        let first = generate(dir.path(), t0, &secrets).unwrap();
        assert!(first.refresh_key_file.is_some());
        let second = generate(dir.path(), t0 + time::Duration::days(1), &secrets).unwrap();
        assert!(second.refresh_key_file.is_none(), "the refresh key is kept");
        let loaded = KeyDirectory::load(dir.path()).unwrap();
        assert_eq!(loaded.newest().kid, second.kid);
        let kids: Vec<_> = loaded.newest_first().map(|k| k.kid.clone()).collect();
        assert_eq!(kids, [second.kid.clone(), first.kid.clone()]);
        assert!(loaded.by_kid(&first.kid).is_some());
        assert_eq!(loaded.refresh_derivation_key().len(), REFRESH_KEY_MIN_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&second.signing_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "owner-only");
        }
    }

    #[test]
    fn a_directory_that_cannot_serve_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(KeyDirectory::load(dir.path()), Err(KeyFileError::NoSigningKey { .. })));
        let secrets = Counting(std::sync::atomic::AtomicU8::new(0));
        let now = Timestamp::from_unix_timestamp(1_800_000_000).unwrap();
        generate(dir.path(), now, &secrets).unwrap();
        fs::write(dir.path().join(REFRESH_KEY_FILE), "c2hvcnQ=\n").unwrap();
        assert!(matches!(KeyDirectory::load(dir.path()), Err(KeyFileError::BadRefreshKey { .. })));
        fs::remove_file(dir.path().join(REFRESH_KEY_FILE)).unwrap();
        assert!(matches!(KeyDirectory::load(dir.path()), Err(KeyFileError::NoRefreshKey { .. })));
        fs::write(dir.path().join("zz-not-a-key.pem"), "hello").unwrap();
        let err = KeyDirectory::load(dir.path()).err().unwrap();
        assert!(matches!(err, KeyFileError::NotEd25519 { .. }));
        assert!(err.to_string().contains("zz-not-a-key.pem"), "names the file: {err}");
        assert!(matches!(
            KeyDirectory::load(&dir.path().join("missing")),
            Err(KeyFileError::ReadDir { .. })
        ));
    }
}
