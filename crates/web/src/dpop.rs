//! This browser's proof key (DPoP, RFC 9449): an ECDSA P-256 key pair made by WebCrypto as
//! *non-extractable*, kept in IndexedDB so that it survives reloads. The browser signs with it; no
//! script — this page's, or one injected into it — can read its private half, so a copy of
//! everything the page can see (cookies aside, which it cannot see either) proves nothing.
//!
//! A proof names the request's method and URL, the moment it was made on the server's clock
//! (the demo can move that clock, and a browser's own can be wrong, so the page adds the
//! difference it last read), the access token's hash where one is sent, and the latest nonce the
//! server handed out.

use std::cell::RefCell;

use tokenlab_core::dpop::{Jwk, access_token_hash};

thread_local! {
    /// The last `DPoP-Nonce` any answer carried: every instance accepts every instance's.
    static NONCE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The server's clock minus this browser's, as the page last read them.
    static CLOCK_OFFSET_SECONDS: RefCell<i64> = const { RefCell::new(0) };
    /// The key once loaded, for panels that build a credential without waiting (orders, the
    /// sessions list).
    static LOADED: RefCell<Option<ProofKey>> = const { RefCell::new(None) };
}

/// The server's "now" as proofs date it: this browser's clock plus the demo clock's offset.
pub fn server_now_seconds() -> i64 {
    let offset = CLOCK_OFFSET_SECONDS.with(|o| *o.borrow());
    (crate::client::browser_now_ms() / 1000.0) as i64 + offset
}

/// The latest nonce the server handed out, if any.
pub fn latest_nonce() -> Option<String> {
    NONCE.with(|n| n.borrow().clone())
}

/// This browser's key, if this page has loaded or made it.
pub fn loaded_key() -> Option<ProofKey> {
    LOADED.with(|k| k.borrow().clone())
}

fn keep_loaded(key: Option<ProofKey>) -> Option<ProofKey> {
    LOADED.with(|k| k.borrow_mut().clone_from(&key));
    key
}

/// Keeps the nonce an answer handed out, for the proofs that follow.
pub fn remember_nonce(nonce: &str) {
    NONCE.with(|n| *n.borrow_mut() = Some(nonce.to_owned()));
}

/// How far the server's clock is ahead of this browser's (`GET /api/demo/clock`: the demo's
/// offset, and any error of the browser's own clock): a proof's `iat` is on the server's clock.
pub fn set_clock_offset(seconds: i64) {
    CLOCK_OFFSET_SECONDS.with(|o| *o.borrow_mut() = seconds);
}

/// The page's key: its public half (what the server registers, by thumbprint) and a handle on the
/// private half that only the browser can use.
#[derive(Clone)]
pub struct ProofKey {
    pub jwk: Jwk,
    /// RFC 7638 thumbprint: what the server stores and a bound token's `cnf.jkt` names.
    pub jkt: String,
    #[cfg(feature = "hydrate")]
    private: web_sys::CryptoKey,
}

impl PartialEq for ProofKey {
    fn eq(&self, other: &Self) -> bool {
        self.jkt == other.jkt
    }
}

impl Eq for ProofKey {}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofKey").field("jkt", &self.jkt).finish_non_exhaustive()
    }
}

/// The JWS signing input of a proof: header and claims, base64url.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn signing_input(
    jwk: &Jwk,
    method: &str,
    url: &str,
    iat: i64,
    access_token: Option<&str>,
    nonce: Option<&str>,
) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let mut claims = serde_json::json!({
        "jti": crate::client::random_key(),
        "htm": method,
        "htu": url,
        "iat": iat,
    });
    if let Some(token) = access_token {
        claims["ath"] = serde_json::json!(access_token_hash(token));
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = serde_json::json!(nonce);
    }
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[cfg(feature = "hydrate")]
mod browser {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
    use tokenlab_core::dpop::Jwk;
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        CryptoKey, EcKeyGenParams, EcdsaParams, IdbDatabase, IdbRequest, IdbTransactionMode,
        SubtleCrypto,
    };

    use super::{ProofKey, signing_input};

    const DATABASE: &str = "tokenlab";
    const STORE: &str = "keys";
    const KEY_NAME: &str = "dpop";

    fn problem(what: &str, err: &JsValue) -> String {
        format!("{what}: {}", err.as_string().unwrap_or_else(|| format!("{err:?}")))
    }

    fn subtle() -> Result<SubtleCrypto, String> {
        let window = web_sys::window().ok_or("no window")?;
        let crypto = window.crypto().map_err(|e| problem("no Web Crypto", &e))?;
        Ok(crypto.subtle())
    }

    /// An IndexedDB request as a future: its result, or its error.
    async fn settled(request: &IdbRequest) -> Result<JsValue, String> {
        let promise = Promise::new(&mut |resolve, reject| {
            let done = request.clone();
            let on_success = Closure::once_into_js(move || {
                let _ = resolve.call1(&JsValue::NULL, &done.result().unwrap_or(JsValue::UNDEFINED));
            });
            let failed = request.clone();
            let on_error = Closure::once_into_js(move || {
                let why = failed.error().ok().flatten().map_or_else(
                    || JsValue::from_str("IndexedDB request failed"),
                    |e| JsValue::from_str(&e.message()),
                );
                let _ = reject.call1(&JsValue::NULL, &why);
            });
            request.set_onsuccess(Some(on_success.unchecked_ref()));
            request.set_onerror(Some(on_error.unchecked_ref()));
        });
        JsFuture::from(promise).await.map_err(|e| problem("IndexedDB", &e))
    }

    async fn database() -> Result<IdbDatabase, String> {
        let factory = web_sys::window()
            .and_then(|w| w.indexed_db().ok().flatten())
            .ok_or("no IndexedDB in this browser")?;
        let open = factory.open_with_u32(DATABASE, 1).map_err(|e| problem("IndexedDB", &e))?;
        let upgrading = open.clone();
        let on_upgrade = Closure::once_into_js(move || {
            if let Ok(db) = upgrading.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                let _ = db.create_object_store(STORE);
            }
        });
        open.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
        settled(&open).await?.dyn_into::<IdbDatabase>().map_err(|e| problem("IndexedDB", &e))
    }

    async fn in_store(
        mode: IdbTransactionMode,
        act: impl FnOnce(&web_sys::IdbObjectStore) -> Result<IdbRequest, JsValue>,
    ) -> Result<JsValue, String> {
        let db = database().await?;
        let transaction = db
            .transaction_with_str_and_mode(STORE, mode)
            .map_err(|e| problem("IndexedDB transaction", &e))?;
        let store = transaction.object_store(STORE).map_err(|e| problem("IndexedDB store", &e))?;
        let request = act(&store).map_err(|e| problem("IndexedDB", &e))?;
        let result = settled(&request).await;
        db.close();
        result
    }

    /// The public half as a JWK, and its thumbprint.
    async fn public_jwk(public: &CryptoKey) -> Result<(Jwk, String), String> {
        let exported = JsFuture::from(
            subtle()?.export_key("jwk", public).map_err(|e| problem("exporting", &e))?,
        )
        .await
        .map_err(|e| problem("exporting the public key", &e))?;
        let member = |name: &str| Reflect::get(&exported, &name.into()).ok()?.as_string();
        let jwk = Jwk {
            kty: member("kty").unwrap_or_default(),
            crv: member("crv"),
            x: member("x"),
            y: member("y"),
            n: None,
            e: None,
            d: None,
        };
        let jkt = jwk.thumbprint().map_err(|e| e.to_string())?;
        Ok((jwk, jkt))
    }

    async fn from_pair(pair: &JsValue) -> Result<ProofKey, String> {
        let half = |name: &str| {
            Reflect::get(pair, &name.into())
                .ok()
                .and_then(|k| k.dyn_into::<CryptoKey>().ok())
                .ok_or_else(|| format!("the stored key pair has no {name}"))
        };
        let (private, public) = (half("privateKey")?, half("publicKey")?);
        let (jwk, jkt) = public_jwk(&public).await?;
        Ok(ProofKey { jwk, jkt, private })
    }

    pub async fn stored() -> Result<Option<ProofKey>, String> {
        let pair = in_store(IdbTransactionMode::Readonly, |s| s.get(&KEY_NAME.into())).await?;
        if pair.is_undefined() || pair.is_null() {
            return Ok(None);
        }
        from_pair(&pair).await.map(Some)
    }

    pub async fn create() -> Result<ProofKey, String> {
        let params = EcKeyGenParams::new("ECDSA", "P-256");
        let usages = Array::of1(&"sign".into());
        // `false`: not extractable. The private half can sign, and can be stored and loaded by
        // this origin, but `exportKey` refuses it to every script.
        let pair = JsFuture::from(
            subtle()?
                .generate_key_with_object(&params, false, &usages)
                .map_err(|e| problem("generating a key", &e))?,
        )
        .await
        .map_err(|e| problem("generating a key", &e))?;
        in_store(IdbTransactionMode::Readwrite, |s| s.put_with_key(&pair, &KEY_NAME.into()))
            .await?;
        from_pair(&pair).await
    }

    pub async fn forget() -> Result<(), String> {
        in_store(IdbTransactionMode::Readwrite, |s| s.delete(&KEY_NAME.into())).await.map(drop)
    }

    pub async fn proof(
        key: &ProofKey,
        method: &str,
        path: &str,
        access_token: Option<&str>,
        iat: i64,
        nonce: Option<&str>,
    ) -> Result<String, String> {
        let origin = web_sys::window()
            .ok_or("no window")?
            .location()
            .origin()
            .map_err(|e| problem("no origin", &e))?;
        let url = format!("{origin}{path}");
        let input = signing_input(&key.jwk, method, &url, iat, access_token, nonce);
        let algorithm: Object = EcdsaParams::new("ECDSA", &"SHA-256".into()).into();
        let signature = JsFuture::from(
            subtle()?
                .sign_with_object_and_u8_array(&algorithm, &key.private, input.as_bytes())
                .map_err(|e| problem("signing", &e))?,
        )
        .await
        .map_err(|e| problem("signing the proof", &e))?;
        // WebCrypto's ECDSA signature is r ‖ s, 64 bytes: exactly JWS's ES256 form (RFC 7518).
        let signature = Uint8Array::new(&signature).to_vec();
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// This browser's key, if it made one before (and IndexedDB kept it).
pub async fn stored_key() -> Result<Option<ProofKey>, String> {
    #[cfg(feature = "hydrate")]
    return browser::stored().await.map(keep_loaded);
    #[cfg(not(feature = "hydrate"))]
    Err("proof keys exist only in the browser".to_owned())
}

/// This browser's key: the one it kept, or a new non-extractable one, kept from now on.
pub async fn page_key() -> Result<ProofKey, String> {
    if let Some(key) = stored_key().await? {
        return Ok(key);
    }
    #[cfg(feature = "hydrate")]
    return browser::create().await.map(|key| keep_loaded(Some(key.clone())).unwrap_or(key));
    #[cfg(not(feature = "hydrate"))]
    Err("proof keys exist only in the browser".to_owned())
}

/// Deletes the kept key ("become another device"): the next bound login makes a new one.
pub async fn forget_key() -> Result<(), String> {
    keep_loaded(None);
    #[cfg(feature = "hydrate")]
    return browser::forget().await;
    #[cfg(not(feature = "hydrate"))]
    Ok(())
}

impl ProofKey {
    /// A proof for `method path` on this page's origin, now, with the latest nonce, and the hash
    /// of `access_token` when one is sent beside it.
    pub async fn proof(
        &self,
        method: &str,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let nonce = latest_nonce();
        self.proof_at(method, path, access_token, server_now_seconds(), nonce.as_deref()).await
    }

    /// A proof dated `iat` with `nonce`, whatever the time and the server's latest nonce: what a
    /// script holding the key could sign in advance, or a client with a skewed clock.
    pub async fn proof_at(
        &self,
        method: &str,
        path: &str,
        access_token: Option<&str>,
        iat: i64,
        nonce: Option<&str>,
    ) -> Result<String, String> {
        #[cfg(feature = "hydrate")]
        return browser::proof(self, method, path, access_token, iat, nonce).await;
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (method, path, access_token, iat, nonce);
            Err("proofs are signed only in the browser".to_owned())
        }
    }
}
