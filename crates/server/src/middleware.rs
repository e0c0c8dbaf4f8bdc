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
    fn around<S: NextService>(&self, request: Request, next: Next<'_, S>) -> Answer;
}

/// The service an [`Around`] wraps: an axum service whose futures can be kept in an [`Answer`].
pub trait NextService:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
{
}

impl<S> NextService for S where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
{
}

/// The next service; running it consumes this, so it runs at most once.
///
/// Generic over the service rather than a `dyn FnMut` that boxed what it returned: `run` hands
/// back the service's own future, which the middleware keeps inside its one [`Answer`]. When the
/// next service's future had a box of its own, and the middleware's answer was boxed once more as
/// the service's future, a middleware cost up to three allocations a request; now it costs one
/// (#14).
pub struct Next<'a, S>(&'a mut S);

impl<S: NextService> Next<'_, S> {
    pub fn run(self, request: Request) -> impl Future<Output = Response> + Send + 'static {
        let answer = self.0.call(request);
        async move {
            match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
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
    S: NextService,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answered;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Answered {
        Answered(self.around.around(request, Next(&mut self.inner)))
    }
}

/// The future of [`AroundService`]: its middleware's [`Answer`] as a service's result, without
/// boxing it once more.
pub struct Answered(Answer);

impl Future for Answered {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}
