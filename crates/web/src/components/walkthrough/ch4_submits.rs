//! Chapter 4: duplicate submits. A one-time form token spent in the order's own transaction lets
//! exactly one of two simultaneous submissions through; an Idempotency-Key answers a retry with
//! the first response.

use tokenlab_core::wire::{CreatedOrder, NewOrder};

use super::{Chapter, Step, ch3_session};
use crate::api::{self, ApiResult, Credential, Network};
use crate::client::random_key;
use crate::lab::{Lab, StepFuture, boxed, expect_status, plural};

pub(super) static CHAPTER: Chapter = Chapter {
    key: "submit",
    title: "4. Duplicate submits",
    claims: "C8",
    explain: &[
        "On a bad network a user presses Submit again, or the app retries by itself. Without protection, every copy that reaches the server creates another order.",
        "The article's fix: the server hands out a one-time token with the form and accepts a submission only while that token is unused. tokenlab spends the token in the same transaction that writes the order, so exactly one copy wins, on one server or several.",
        "The standard form of the idea is the Idempotency-Key header: the client names the request, and the server answers every retry with the first response.",
    ],
    look_for: "Two requests in flight at once, one 201 and one 409 duplicate_submit naming the order; the form token in the server state marked as spent; idempotent-replayed: true on the retry.",
    steps: &[
        Step { label: "Log in", run: ch3_session::login },
        Step { label: "Open the order form (one-time token)", run: form_token },
        Step { label: "Double-click on a slow network: submit twice at once", run: submit_twice },
        Step { label: "Order with an Idempotency-Key, then retry", run: idempotent },
        Step { label: "Count the orders", run: count },
    ],
    extras: &[],
};

fn orders(n: usize) -> String {
    plural(n as i64, "order", "orders")
}

fn form_token(lab: Lab) -> StepFuture {
    boxed(async move {
        let before = lab.order_count().await?;
        let response = api::form_token(&lab.client, &Credential::Cookies).await;
        let token = expect_status(&response, 200)?.form_token.clone();
        lab.remember(|m| {
            m.form_token = token;
            m.orders_before = before;
        });
        Ok(format!("a one-time token; {} so far", orders(before)))
    })
}

fn submit_twice(lab: Lab) -> StepFuture {
    boxed(async move {
        let token = lab.recall(|m| m.form_token.clone());
        let (_, duplicate) = lab.submit_twice_slowly("green tea", token).await?;
        let before = lab.recall(|m| m.orders_before);
        let after = lab.order_count().await?;
        if after != before + 1 {
            return Err(format!("expected {}, found {after}", orders(before + 1)));
        }
        Ok(format!(
            "one 201 and one 409 duplicate_submit ({}); exactly one new order",
            duplicate.message()
        ))
    })
}

async fn order_with_key(lab: Lab, key: &str) -> ApiResult<CreatedOrder> {
    let order = NewOrder { item: "oolong".to_owned(), quantity: 1, form_token: None };
    api::place_order(&lab.client, &Credential::Cookies, &order, Some(key), Network::default()).await
}

fn idempotent(lab: Lab) -> StepFuture {
    boxed(async move {
        let key = random_key();
        let first = order_with_key(lab, &key).await;
        let first = expect_status(&first, 201)?;
        let retry = order_with_key(lab, &key).await;
        let retry = expect_status(&retry, 201)?;
        if retry.header("idempotent-replayed") != Some("true") || retry.body != first.body {
            return Err("the retry was not answered with the first response".to_owned());
        }
        Ok(format!("201, then the same 201 replayed (order #{})", first.order.id))
    })
}

fn count(lab: Lab) -> StepFuture {
    boxed(async move {
        let before = lab.recall(|m| m.orders_before);
        let after = lab.order_count().await?;
        if after != before + 2 {
            return Err(format!("expected {}, found {after}", orders(before + 2)));
        }
        Ok(format!("{}: one per intended submission, none per retry", orders(after)))
    })
}
