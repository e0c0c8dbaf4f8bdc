//! Middleware that calls the next service directly.
//!
//! `axum::middleware::from_fn` clones the inner service — every route and layer under it, and the
//! app state — on every request, because it calls it from an `async fn`. `perf` showed those
//! clones as a quarter of an access-token request. A middleware here says what it does around the
//! next service in one synchronous call instead, so the service that was made ready serves the
//! request as it is. (A middleware that must await before calling the next service, like
//! `serve::BodyLimits`, cannot be written this way.)

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;

/// A response still being worked on.
pub type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// What a middleware does around the next service: answer without it, or run it (once, before
/// returning) and shape what it answers.
pub trait Around: Clone + Send + Sync + 'static {
    fn around(&self, request: Request, next: Next<'_>) -> Answer;
}

/// The next service; running it consumes this, so it runs at most once.
pub struct Next<'a>(&'a mut dyn FnMut(Request) -> Answer);

impl Next<'_> {
    pub fn run(self, request: Request) -> Answer {
        (self.0)(request)
    }
}

/// The layer of an [`Around`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AroundLayer<A>(pub A);

impl<A: Clone, S> tower::Layer<S> for AroundLayer<A> {
    type Service = AroundService<A, S>;

    fn layer(&self, inner: S) -> AroundService<A, S> {
        AroundService { around: self.0.clone(), inner }
    }
}

/// The service of [`AroundLayer`].
#[derive(Debug, Clone)]
pub struct AroundService<A, S> {
    around: A,
    inner: S,
}

impl<A, S> tower::Service<Request> for AroundService<A, S>
where
    A: Around,
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = &mut self.inner;
        let mut next = |request: Request| -> Answer {
            let answer = inner.call(request);
            Box::pin(async move {
                match answer.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            })
        };
        let answer = self.around.around(request, Next(&mut next));
        Box::pin(async move { Ok(answer.await) })
    }
}
