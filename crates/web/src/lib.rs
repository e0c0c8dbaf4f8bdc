#![recursion_limit = "256"]
//! The lab page. The same components render on the server (`ssr`) and come alive in the browser
//! (`hydrate`); the browser side talks to the server only through the public API ([`client`]), one
//! typed call per endpoint (`api`).

mod api;
pub mod client;
mod components;
pub mod dpop;
mod lab;
mod logins;
pub mod server_clock;
mod storage;
mod tabs;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::client::ApiClient;
use crate::components::{
    AccountPanel, AttackLab, BearerPanel, ClockBar, DevicePanel, Inspector, OrdersPanel,
    PolicyPicker, RaceConsole, RevocationPanel, SessionPanel, SessionsPanel, Timeline, Walkthrough,
};
use crate::logins::PageLogins;
use crate::server_clock::ServerClock;

/// The attack lab's cross-site page, written into a frame that inherits the pages' policy: the
/// server lists [`ATTACKER_SCRIPT`]'s hash in that policy.
pub use crate::lab::{ATTACKER_SCRIPT, attacker_page};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"tokenlab — login tokens, side by side"</title>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
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
            <Routes fallback=|| view! { <main class="not-found" data-hydrated=hydration_marker()><h1>"Not found"</h1><a href="/">"Back to the lab"</a></main> }>
                <Route path=path!("/") view=LabPage/>
                <Route path=path!("/walkthrough") view=WalkthroughPage/>
                <Route path=path!("/attacks") view=AttacksPage/>
            </Routes>
        </Router>
    }
}

/// Browser tests wait for `data-hydrated`: effects run only after hydration, so its presence
/// means the page's event handlers are attached.
fn hydration_marker() -> impl Fn() -> Option<&'static str> + Copy {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    move || hydrated.get().then_some("true")
}

#[component]
fn Nav() -> impl IntoView {
    view! {
        <nav class="pages" aria-label="Pages">
            <a href="/">"Lab"</a>
            <a href="/walkthrough">"Walkthrough"</a>
            <a href="/attacks">"Attack lab"</a>
            <a href="/api/docs" rel="external">"API reference"</a>
        </nav>
    }
}

#[component]
fn LabPage() -> impl IntoView {
    // What the scheme panels hold, shared with the sessions list (which asks with one of them).
    provide_context(PageLogins::new());
    view! {
        <main class="lab" data-hydrated=hydration_marker()>
            <ClockBar/>
            <Nav/>
            <section class="intro">
                <p>
                    "A token lets a server recognise a client without checking its password on every request. "
                    "This lab runs each way of doing that from the article side by side, against a real server, "
                    "and shows every request it makes in the timeline below. New here? Start with the "
                    <a href="/walkthrough">"walkthrough"</a> "."
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
            <SessionsPanel/>
            <RevocationPanel/>
            <PolicyPicker/>
            <OrdersPanel/>
            <RaceConsole/>
            <div class="side-by-side">
                <Timeline/>
                <Inspector/>
            </div>
        </main>
    }
}

/// A teaching page: its content, with the server state and the timeline beside it.
#[component]
fn SidebarPage(class: &'static str, children: Children) -> impl IntoView {
    view! {
        <main class=format!("lab {class}") data-hydrated=hydration_marker()>
            <ClockBar/>
            <Nav/>
            <div class="with-sidebar">
                {children()}
                <aside class="sidebar">
                    <Inspector/>
                    <Timeline/>
                </aside>
            </div>
        </main>
    }
}

#[component]
fn WalkthroughPage() -> impl IntoView {
    view! { <SidebarPage class="walkthrough-page"><Walkthrough/></SidebarPage> }
}

#[component]
fn AttacksPage() -> impl IntoView {
    view! { <SidebarPage class="attacks-page"><AttackLab/></SidebarPage> }
}
