#![recursion_limit = "256"]
//! The lab page. The same components render on the server (`ssr`) and come alive in the browser
//! (`hydrate`); the browser side talks to the server only through the public API ([`client`]).

pub mod client;
mod components;
pub mod server_clock;
mod storage;
mod tabs;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::client::ApiClient;
use crate::components::{
    AccountPanel, BearerPanel, ClockBar, DevicePanel, OrdersPanel, SessionPanel, Timeline,
};
use crate::server_clock::ServerClock;

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"tokenlab — login tokens, side by side"</title>
                <link rel="stylesheet" href="/pkg/tokenlab.css"/>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    let client = ApiClient::new();
    provide_context(client);
    provide_context(ServerClock::new(client));
    view! {
        <Router>
            <Routes fallback=|| view! { <main class="not-found"><h1>"Not found"</h1><a href="/">"Back to the lab"</a></main> }>
                <Route path=path!("/") view=LabPage/>
            </Routes>
        </Router>
    }
}

#[component]
fn LabPage() -> impl IntoView {
    // Browser tests wait for this marker: effects run only after hydration, so its presence means
    // the page's event handlers are attached.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <main class="lab" data-hydrated=move || hydrated.get().then_some("true")>
            <ClockBar/>
            <section class="intro">
                <p>
                    "A token lets a server recognise a client without checking its password on every request. "
                    "This lab runs each way of doing that from the article side by side, against a real server, "
                    "and shows every request it makes in the timeline below."
                </p>
                <p class="links">
                    <a href="/api/docs">"API reference"</a>
                    " · "
                    <a href="/api/openapi.json">"OpenAPI document"</a>
                </p>
            </section>
            <div class="panels">
                <AccountPanel/>
                <DevicePanel/>
                <SessionPanel/>
                <BearerPanel/>
            </div>
            <OrdersPanel/>
            <Timeline/>
        </main>
    }
}
