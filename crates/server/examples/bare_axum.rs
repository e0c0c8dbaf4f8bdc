//! The yardstick of `just loadtest`: a minimal axum handler, without tokenlab's middleware, so that
//! the load test can tell what that middleware costs (`/livez` ≥ 0.7 of this, issue #14).
//!
//! `bare_axum [ADDR]` (default `127.0.0.1:0`). Same runtime as tokenlab's `main.rs` (tokio's
//! multi-thread default, mimalloc) and the same first stdout line, `listening on http://HOST:PORT`, so that
//! loadtest/run.py starts both alike. SIGTERM ends it.

// The same allocator as tokenlab's `main.rs`, so that the ratio measures the middleware and not
// the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    announce(listener.local_addr()?);
    let app = axum::Router::new().route("/livez", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app).await?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn announce(addr: std::net::SocketAddr) {
    println!("listening on http://{addr}");
}
