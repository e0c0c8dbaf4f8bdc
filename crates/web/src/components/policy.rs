//! Token-policy presets: the lifetimes the server gives access and refresh tokens, switched at
//! runtime (demo profile), so one scenario can be run under each.

use leptos::prelude::*;
use tokenlab_core::wire::{ChoosePolicy, PolicyChoice};

use crate::api::{self, ApiResult};
use crate::client::ApiClient;
use crate::lab::{current_owner, spawn_owned};
use crate::server_clock::format_remaining;

#[component]
pub fn PolicyPicker() -> impl IntoView {
    let client = expect_context::<ApiClient>();
    let owner = current_owner();
    let choice = RwSignal::new(None::<PolicyChoice>);
    let problem = RwSignal::new(None::<String>);
    // Outside the demo profile there are no presets to switch: the picker stays out of the way.
    let available = RwSignal::new(true);
    let apply = move |result: ApiResult<PolicyChoice>| match result {
        Ok(answer) => {
            choice.set(Some(answer.into_body()));
            problem.set(None);
        }
        Err(failure) if failure.status() == Some(404) => available.set(false),
        Err(failure) => problem.set(Some(failure.to_string())),
    };
    // Read again after every request the page makes: "reset demo" puts the preset back.
    let timeline = client.timeline();
    Effect::new(move |_| {
        timeline.with(|entries| entries.len());
        spawn_owned(owner, async move { apply(api::policy(&client.unrecorded()).await) });
    });
    let switch = move |name: String| {
        spawn_owned(owner, async move {
            apply(api::choose_policy(&client, &ChoosePolicy { name }).await);
        });
    };
    view! {
        <div class="policy-picker" data-testid="policy-picker" class:hidden=move || !available.get()>
            <h4>"Token lifetimes (preset)"</h4>
            {move || choice.get().map(|current| {
                let selected = current.current.name.clone();
                view! {
                    <div class="presets" role="radiogroup" aria-label="Token policy preset">
                        {current.presets.iter().map(|preset| {
                            let name = preset.name.clone();
                            let checked = name == selected;
                            let label = format!(
                                "{}: access {}, refresh {} idle / {} in all",
                                preset.name,
                                format_remaining(preset.access_lifetime_seconds),
                                format_remaining(preset.refresh_idle_seconds),
                                format_remaining(preset.refresh_absolute_seconds),
                            );
                            view! {
                                <label class="preset" class:current=checked title=preset.source.clone()>
                                    <input type="radio" name="token-policy" value=name.clone() prop:checked=checked
                                        on:change=move |_| switch(name.clone())/>
                                    " " {label}
                                    <span class="source">{preset.source.clone()}</span>
                                </label>
                            }
                        }).collect_view()}
                    </div>
                    <p class="muted" data-testid="policy-current">
                        "In force: " <strong>{selected}</strong>
                        ". A switch applies to tokens issued from now on; a refresh-token family keeps the end it got at login."
                    </p>
                }
            })}
            {move || problem.get().map(|p| view! { <p class="error">{p}</p> })}
        </div>
    }
}
