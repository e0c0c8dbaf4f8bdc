#![recursion_limit = "256"]
//! The browser entry point. The server rendered the page; this attaches the event handlers and
//! reactive state to that HTML instead of re-rendering it.

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(tokenlab_web::App);
}
