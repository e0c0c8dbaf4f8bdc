//! Coordination between tabs of this origin: a Web Lock around the refresh, and a BroadcastChannel
//! that hands a fresh access token from the tab that refreshed to the others — memory to memory,
//! never through storage.

use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Runs `work` while holding the Web Lock `name`, shared by every tab of the origin. Where the
/// browser has no Web Locks, `work` runs unguarded. `None` only if the lock machinery failed.
#[cfg(feature = "hydrate")]
pub async fn with_lock<T: 'static>(name: &str, work: LocalBoxFuture<'static, T>) -> Option<T> {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::{JsCast as _, JsValue};

    let locks = web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("locks")).ok())
        .filter(|l| !l.is_undefined());
    let request = locks.as_ref().and_then(|l| {
        Reflect::get(l, &JsValue::from_str("request")).ok()?.dyn_into::<Function>().ok()
    });
    let (Some(locks), Some(request)) = (locks, request) else {
        return Some(work.await);
    };
    let (done, result) = futures::channel::oneshot::channel::<T>();
    let callback = wasm_bindgen::closure::Closure::once_into_js(move |_lock: JsValue| {
        wasm_bindgen_futures::future_to_promise(async move {
            let _ = done.send(work.await);
            Ok(JsValue::UNDEFINED)
        })
    });
    request.call2(&locks, &JsValue::from_str(name), &callback).ok()?;
    result.await.ok()
}

#[cfg(not(feature = "hydrate"))]
pub async fn with_lock<T: 'static>(_name: &str, work: LocalBoxFuture<'static, T>) -> Option<T> {
    Some(work.await)
}

/// A BroadcastChannel carrying JSON messages to the other tabs (never to the sender): values of one
/// type, written with `post` and read back by every other tab's `on_message`.
pub struct TabChannel {
    #[cfg(feature = "hydrate")]
    channel: Option<web_sys::BroadcastChannel>,
}

impl TabChannel {
    #[cfg(feature = "hydrate")]
    pub fn open<T: DeserializeOwned>(name: &str, on_message: impl Fn(T) + 'static) -> Self {
        use wasm_bindgen::JsCast as _;
        let channel = web_sys::BroadcastChannel::new(name).ok();
        if let Some(channel) = &channel {
            let handler = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::MessageEvent)>::new(
                move |event: web_sys::MessageEvent| {
                    if let Some(value) =
                        event.data().as_string().and_then(|text| serde_json::from_str(&text).ok())
                    {
                        on_message(value);
                    }
                },
            );
            channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
            // The channel lives as long as the page, and so must its handler.
            handler.forget();
        }
        Self { channel }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn open<T: DeserializeOwned>(_name: &str, _on_message: impl Fn(T) + 'static) -> Self {
        Self {}
    }

    #[cfg(feature = "hydrate")]
    pub fn post(&self, message: &impl Serialize) {
        if let (Some(channel), Ok(text)) = (&self.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&wasm_bindgen::JsValue::from_str(&text));
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn post(&self, _message: &impl Serialize) {}
}
