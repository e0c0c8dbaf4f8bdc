//! `tokenlab dpop`: a DPoP client on the command line (RFC 9449), so that the bound-token lessons
//! can be done with curl like every other one. It makes a proof key (Ed25519, PKCS#8 PEM, readable
//! by its owner only), tells its thumbprint, and signs proofs of one request each.
//!
//! A file on disk is a *weaker* home for a key than a browser's non-extractable WebCrypto key:
//! whoever can read the file can sign. That is the point of the comparison the lab makes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tokenlab_core::dpop::{Jwk, ProofRejection, access_token_hash};
use tokenlab_core::random::{SecretSource, SecretSourceError, encode_token};
use zeroize::Zeroizing;

use crate::keys::files::{KeyFileError, write_private_file};

#[derive(Debug, thiserror::Error)]
pub enum ProofCliError {
    #[error(transparent)]
    File(#[from] KeyFileError),
    #[error("cannot read {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{} is not an Ed25519 private key in PKCS#8 PEM: {detail}", file.display())]
    NotEd25519 { file: PathBuf, detail: String },
    #[error("no randomness: {0}")]
    Random(#[from] SecretSourceError),
    #[error("the key has no thumbprint: {0}")]
    Thumbprint(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// What one proof names.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    pub method: &'a str,
    /// The request's absolute URL (its query, if any, is ignored by the server).
    pub url: &'a str,
    /// Unix seconds on the server's clock.
    pub iat: i64,
    /// The access token sent beside the proof, if any: the proof carries its hash (`ath`).
    pub access_token: Option<&'a str>,
    /// The server's latest `DPoP-Nonce`, if it asks for one.
    pub nonce: Option<&'a str>,
}

/// Writes a new proof key to `file` (which must not exist) and returns its thumbprint.
pub fn generate_key(file: &Path, secrets: &dyn SecretSource) -> Result<String, ProofCliError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    secrets.fill(seed.as_mut())?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| ProofCliError::NotEd25519 { file: file.to_owned(), detail: e.to_string() })?;
    write_private_file(file, pem.as_bytes())?;
    thumbprint(&key)
}

pub fn load_key(file: &Path) -> Result<SigningKey, ProofCliError> {
    let pem = Zeroizing::new(
        std::fs::read_to_string(file)
            .map_err(|source| ProofCliError::Read { file: file.to_owned(), source })?,
    );
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| ProofCliError::NotEd25519 { file: file.to_owned(), detail: e.to_string() })
}

/// The public half, as a proof's header carries it.
pub fn public_jwk(key: &SigningKey) -> Jwk {
    Jwk {
        kty: "OKP".to_owned(),
        crv: Some("Ed25519".to_owned()),
        x: Some(URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())),
        y: None,
        n: None,
        e: None,
        d: None,
    }
}

/// RFC 7638: what the server stores and a bound token's `cnf.jkt` names.
pub fn thumbprint(key: &SigningKey) -> Result<String, ProofCliError> {
    public_jwk(key)
        .thumbprint()
        .map_err(|e: ProofRejection| ProofCliError::Thumbprint(e.to_string()))
}

/// A proof of `request`, signed by `key`, with a fresh random `jti`.
pub fn proof(
    key: &SigningKey,
    request: &ProofRequest<'_>,
    secrets: &dyn SecretSource,
) -> Result<String, ProofCliError> {
    let mut jti = [0u8; tokenlab_core::random::SECRET_BYTES];
    secrets.fill(&mut jti)?;
    let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": public_jwk(key)});
    let mut claims = json!({
        "jti": encode_token(&jti),
        "htm": request.method,
        "htu": request.url,
        "iat": request.iat,
    });
    if let Some(token) = request.access_token {
        claims["ath"] = json!(access_token_hash(token));
    }
    if let Some(nonce) = request.nonce {
        claims["nonce"] = json!(nonce);
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der = key.to_pkcs8_der().map_err(|e| ProofCliError::Sign(e.to_string()))?;
    let signing = EncodingKey::from_ed_der(der.as_bytes());
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &signing, Algorithm::EdDSA)
        .map_err(|e| ProofCliError::Sign(e.to_string()))?;
    Ok(format!("{input}.{signature}"))
}
