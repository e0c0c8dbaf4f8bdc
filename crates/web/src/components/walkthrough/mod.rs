//! The walkthrough: the article, chapter by chapter, each with buttons that make its claim happen
//! against the live server. Every step is a real API call (see the timeline) whose answer is
//! checked against what the chapter says should happen.
//!
//! One module per chapter holds its prose and its steps; this one holds what they share — the
//! shape of a [`Chapter`] and of a [`Step`], the [`Extra`] panels a chapter can show, progress —
//! and the components that draw them.

mod ch1_why;
mod ch2_device;
mod ch3_session;
mod ch4_submits;
mod ch5_refresh;
mod ch6_beyond;
mod ch7_binding;

use leptos::prelude::*;

use crate::components::{DelayTable, PolicyPicker};
use crate::lab::{Lab, StepFn, StepState};
use crate::storage;

/// One "do it" button of a chapter.
struct Step {
    /// What the step does, in the learner's words: the text beside its button.
    label: &'static str,
    /// Makes the step's API calls and checks the server's real answers against the lesson: `Ok`
    /// says what happened, `Err` what happened instead.
    run: StepFn,
}

/// One chapter: a part of the article, explained, then made to happen step by step.
struct Chapter {
    /// The chapter's stable name: its anchor, its `data-testid` (`chapter-{key}`) and how the
    /// browser remembers it as done.
    key: &'static str,
    title: &'static str,
    /// The article's claims this chapter shows (C1…C9 in the project's summary of the article).
    claims: &'static str,
    explain: &'static [&'static str],
    look_for: &'static str,
    steps: &'static [Step],
    /// Panels beyond the steps, each drawn where [`Extra::above_steps`] says.
    extras: &'static [Extra],
}

/// A panel a chapter shows beside its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// The token-policy preset picker (chapter 5): the chapter's steps run under the preset it
    /// shows, so it comes before them.
    PresetPicker,
    /// The revocation-delay table (chapter 6), filled in by the sign-out step.
    RevocationDelays,
    /// The comparator (chapter 6): one moment, three schemes.
    Comparator,
    /// The way on to the attack lab.
    AttackLabLink,
    /// The binding ladder's table (chapter 7): every theft on every rung.
    BindingLadder,
}

impl Extra {
    /// Whether the panel comes before the chapter's steps (and its "run the chapter" button)
    /// rather than after them.
    fn above_steps(self) -> bool {
        matches!(self, Extra::PresetPicker)
    }

    fn view(self, lab: Lab) -> AnyView {
        match self {
            Extra::PresetPicker => view! { <PolicyPicker/> }.into_any(),
            Extra::RevocationDelays => view! {
                {move || lab.revocation.with(Option::is_none).then(|| view! {
                    <p class="muted">"Step 1 fills in each scheme's revocation delay here."</p>
                })}
                <DelayTable report=lab.revocation/>
            }
            .into_any(),
            Extra::Comparator => view! { <ch6_beyond::Comparison/> }.into_any(),
            Extra::AttackLabLink => {
                view! { <p><a href="/attacks">"Open the attack lab →"</a></p> }.into_any()
            }
            Extra::BindingLadder => view! { <ch7_binding::LadderTable/> }.into_any(),
        }
    }
}

/// The chapters, in the article's order.
static CHAPTERS: [&Chapter; 7] = [
    &ch1_why::CHAPTER,
    &ch2_device::CHAPTER,
    &ch3_session::CHAPTER,
    &ch4_submits::CHAPTER,
    &ch5_refresh::CHAPTER,
    &ch6_beyond::CHAPTER,
    &ch7_binding::CHAPTER,
];

const PROGRESS_KEY: &str = "tokenlab.walkthrough.done";

fn load_progress() -> Vec<&'static str> {
    let saved = storage::get(PROGRESS_KEY).unwrap_or_default();
    CHAPTERS.iter().map(|c| c.key).filter(|key| saved.split(',').any(|s| s == *key)).collect()
}

fn save_progress(done: &[&'static str]) {
    storage::set(PROGRESS_KEY, &done.join(","));
}

#[component]
pub fn Walkthrough() -> impl IntoView {
    let lab = Lab::from_context();
    provide_context(lab);
    let done = RwSignal::new(Vec::<&'static str>::new());
    // Progress lives in the browser; read it only there, after hydration.
    Effect::new(move |_| done.set(load_progress()));
    let resetting = RwSignal::new(None::<StepState>);
    let reset_demo = move |_| {
        lab.run(async move {
            resetting.set(Some(StepState::Running));
            let result = lab.reset().await;
            if result.is_ok() {
                done.set(Vec::new());
                save_progress(&[]);
            }
            resetting.set(Some(StepState::from_result(result)));
        });
    };
    view! {
        <section class="walkthrough" aria-labelledby="walkthrough-title">
            <h2 id="walkthrough-title">"Walkthrough: the article, chapter by chapter"</h2>
            <p>
                "Each chapter explains one part of the article, then lets you make it happen. Every button is a real request "
                "to the server's public API: watch it in the timeline and its effect in the server state."
            </p>
            <div class="progress" data-testid="progress">
                <progress max=CHAPTERS.len() value=move || done.get().len()></progress>
                <span>{move || format!("{} of {} chapters done", done.get().len(), CHAPTERS.len())}</span>
                <button class="reset-demo" disabled=move || lab.busy.get() on:click=reset_demo>"Reset demo"</button>
                {move || resetting.get().map(|state| view! { <span class=format!("step-result {}", state.css())>{state.text()}</span> })}
            </div>
            {CHAPTERS.iter().map(|chapter| view! { <ChapterView chapter done/> }).collect_view()}
        </section>
    }
}

#[component]
fn ChapterView(chapter: &'static Chapter, done: RwSignal<Vec<&'static str>>) -> impl IntoView {
    let lab = expect_context::<Lab>();
    let states: Vec<RwSignal<StepState>> =
        chapter.steps.iter().map(|_| RwSignal::new(StepState::NotRun)).collect();
    let states = StoredValue::new(states);

    let mark_progress = move || {
        let all_passed = states
            .with_value(|s| s.iter().all(|st| matches!(st.get_untracked(), StepState::Passed(_))));
        done.update(|keys| {
            let present = keys.contains(&chapter.key);
            if all_passed && !present {
                keys.push(chapter.key);
            }
        });
        if all_passed {
            save_progress(&done.get_untracked());
        }
    };
    let run_step = move |index: usize| {
        let state = states.with_value(|s| s[index]);
        lab.run(async move {
            state.set(StepState::Running);
            let result = (chapter.steps[index].run)(lab).await;
            state.set(StepState::from_result(result));
            mark_progress();
        });
    };
    let run_chapter = move |_| {
        lab.run(async move {
            states.with_value(|s| s.iter().for_each(|st| st.set(StepState::NotRun)));
            if let Err(problem) = lab.reset_keeping_preset().await {
                states.with_value(|s| {
                    s[0].set(StepState::Failed(format!("reset failed: {problem}")))
                });
            } else {
                for (index, step) in chapter.steps.iter().enumerate() {
                    let state = states.with_value(|s| s[index]);
                    state.set(StepState::Running);
                    let result = (step.run)(lab).await;
                    let failed = result.is_err();
                    state.set(StepState::from_result(result));
                    if failed {
                        break;
                    }
                }
                mark_progress();
            }
        });
    };
    let extras = move |above: bool| {
        chapter
            .extras
            .iter()
            .filter(move |extra| extra.above_steps() == above)
            .map(move |extra| extra.view(lab))
            .collect_view()
    };

    view! {
        <article class="chapter" id=chapter.key data-testid=format!("chapter-{}", chapter.key)
            data-done=move || done.get().contains(&chapter.key).then_some("true")>
            <h3>
                {chapter.title}
                " " <span class="claims">{chapter.claims}</span>
                {move || done.get().contains(&chapter.key).then(|| view! { <span class="done-badge">"✓ done"</span> })}
            </h3>
            {chapter.explain.iter().map(|p| view! { <p>{*p}</p> }).collect_view()}
            <p class="look-for"><strong>"What to look for: "</strong>{chapter.look_for}</p>
            {extras(true)}
            <button class="run-chapter" disabled=move || lab.busy.get() on:click=run_chapter>
                "Run the chapter from a clean state"
            </button>
            <ol class="steps">
                {chapter
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(index, step)| {
                        let state = states.with_value(|s| s[index]);
                        view! {
                            <li class=move || format!("step {}", state.get().css()) data-state=move || state.get().css()>
                                <button class="do-it" disabled=move || lab.busy.get()
                                    on:click=move |_| run_step(index)>"do it"</button>
                                " " <span class="label">{step.label}</span>
                                <div class="step-result">{move || state.get().text()}</div>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
            {extras(false)}
        </article>
    }
}
