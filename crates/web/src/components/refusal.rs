use leptos::prelude::*;

use crate::client::Refusal;

/// How every panel shows a refused request: the machine-readable reason first, then what it means.
#[component]
pub fn RefusalView(refusal: Refusal) -> impl IntoView {
    let data_reason = refusal.code.clone();
    view! {
        <div class="refusal" role="alert" data-reason=data_reason>
            <p>
                <span class="status">{refusal.status}</span>
                " "
                <code class="reason">{refusal.code}</code>
                " — "
                {refusal.message}
            </p>
            {refusal.explanation.map(|text| view! { <p class="explanation">{text}</p> })}
        </div>
    }
}
