//! Counting the database statements each API request runs (the article's claim C3: a token exists
//! to spare the server work, so the lab shows how much work each scheme costs).
//!
//! sea-orm calls a metric callback after every statement, in the task that ran it. The middleware
//! gives each request a task-local counter, and [`counted`] carries it into a task the request
//! spawns; statements outside a request (migrations, the garbage collector) find no counter and are
//! not counted. Nothing here decides anything: it only reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use sea_orm::DatabaseConnection;

/// `X-Tokenlab-Db-Queries: N` on every API response: the statements its request ran.
pub static DB_QUERIES_HEADER: HeaderName = HeaderName::from_static("x-tokenlab-db-queries");

tokio::task_local! {
    static STATEMENTS: Arc<AtomicU32>;
}

/// Makes `db` report every statement to the request that runs it.
pub fn count_statements(db: &mut DatabaseConnection) {
    // Outside a request there is no counter, and nothing to report to.
    db.set_metric_callback(|_| count_one());
}

/// Counts one statement run outside sea-orm (see `sqlite_inline`) for the current request.
pub fn count_one() {
    let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
}

/// `work`, counting its statements for the request that spawns it (if any).
pub fn counted<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let counter = STATEMENTS.try_with(Arc::clone).ok();
    async move {
        match counter {
            Some(counter) => STATEMENTS.scope(counter, work).await,
            None => work.await,
        }
    }
}

/// Gives each request its own counter and reports it in [`DB_QUERIES_HEADER`]. An
/// [`Around`](crate::middleware::Around) middleware: the next service's `call` only builds its
/// future, and the statements run when it is polled, inside the counter's scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatementCount;

impl crate::middleware::Around for StatementCount {
    fn around<S: crate::middleware::NextService>(
        &self,
        request: Request,
        next: crate::middleware::Next<'_, S>,
    ) -> crate::middleware::Answer {
        let answer = next.run(request);
        let count = Arc::new(AtomicU32::new(0));
        Box::pin(STATEMENTS.scope(Arc::clone(&count), async move {
            let mut response = answer.await;
            let count = count.load(Ordering::Relaxed);
            response.headers_mut().insert(DB_QUERIES_HEADER.clone(), HeaderValue::from(count));
            response
        }))
    }
}
