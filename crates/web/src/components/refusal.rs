use leptos::prelude::*;

use crate::api::ApiFailure;
use crate::client::Refusal;

/// How every panel shows a refused request: the machine-readable reason first, then what it means.
#[component]
pub fn RefusalView(refusal: Refusal) -> impl IntoView {
    let code = refusal.reason.code();
    view! {
        <div class="refusal" role="alert" data-reason=code>
            <p>
                <span class="status">{refusal.status}</span>
                " "
                <code class="reason">{code}</code>
                " — "
                {refusal.message}
            </p>
            <p class="explanation">{refusal.reason.explanation()}</p>
        </div>
    }
}

/// Any failed call, in the same frame: a refusal as [`RefusalView`] shows it; no answer at all as
/// `network`, an answer outside the API's contract as `unexpected`, with what went wrong.
#[component]
pub fn FailureView(failure: ApiFailure) -> impl IntoView {
    if let Some(refusal) = failure.refusal() {
        return view! { <RefusalView refusal/> }.into_any();
    }
    let (status, code) = match failure.status() {
        None => (0, "network"),
        Some(status) => (status, "unexpected"),
    };
    let message = failure.message().to_owned();
    view! {
        <div class="refusal" role="alert" data-reason=code>
            <p>
                <span class="status">{status}</span>
                " "
                <code class="reason">{code}</code>
                " — "
                {message}
            </p>
        </div>
    }
    .into_any()
}
