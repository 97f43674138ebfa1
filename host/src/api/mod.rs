//! The HTTP API on hyper 1: [`serve`] accepts connections and routes
//! requests to [`Sessions`](crate::session::Sessions).
//!
//! Routes (JSON in and out; see `routes` for each):
//! - `GET /healthz`, `GET /readyz`
//! - `GET /`, `GET /admin`, `GET /assets/{file}`, `GET /openapi.json`:
//!   the browser client, the admin console, the API's description (`web`)
//! - `GET /v1/games`
//! - `GET /v1/games/{game}/sessions`: the lobby's open sessions
//! - `POST /v1/games/{game}/sessions`
//! - `POST /v1/games/{game}/rpc/{name}` (optionally an account's token)
//! - `GET /v1/sessions/{id}`
//! - `POST /v1/sessions/{id}/join` (a guest, or an account's bearer token)
//! - `POST /v1/accounts`, `POST /v1/login`, `GET /v1/accounts/me` (bearer
//!   account token)
//! - `POST /v1/sessions/{id}/actions` (bearer token)
//! - `GET /v1/sessions/{id}/view` (bearer token)
//! - `GET /v1/sessions/{id}/events`: a WebSocket of the session's events
//!   (`socket`)
//!
//! Every phase of a connection has a limit, so no client can hold the host
//! (see `connection`): connections in all (`server.connections_max`) and
//! per client, the size of a request head, the time to send the headers
//! (also the keep-alive idle time), to send the body and to take each
//! response write. Creating and joining sessions, registering and logging
//! in are rate-limited per client (`rate`).
//!
//! In cluster mode a request for a session another instance owns is
//! forwarded there (`forward`), sockets relayed.
//!
//! **Invariant:** this is the only module that knows the API's JSON wire
//! format, and errors leave it as `{"error": {"code", "message"}}` with a
//! stable code and no backend text.

mod admin;
mod connection;
mod error;
mod forward;
mod rate;
mod routes;
mod socket;
pub mod web;

pub use connection::client_of;
pub use error::ApiError;

use crate::app::App;
use connection::{ClientConnections, Held, WriteDeadline};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rate::RateLimits;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

/// What the handlers share besides the app.
struct Server {
    app: Arc<App>,
    rate_limits: RateLimits,
    /// Turns true when the host shuts down: sockets then close (1001).
    shutdown: watch::Receiver<bool>,
    /// Cluster mode: sends requests on to the instance owning a session.
    forwarder: forward::Forwarder,
}

/// How often rate-limit buckets that have refilled are forgotten.
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// Accepts connections until `shutdown`, each served on its own task, then
/// lets requests in flight finish (up to `server.shutdown_grace_ms`).
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let config = app.config().server.clone();
    let (stop, stopping) = watch::channel(false);
    let server = Arc::new(Server {
        rate_limits: RateLimits::new(app.config()),
        app,
        shutdown: stopping.clone(),
        forwarder: forward::forwarder(),
    });
    let connections = Arc::new(Semaphore::new(config.connections_max));
    let clients = ClientConnections::new(config.connections_per_client_max);
    // Every connection (and socket) holds a sender: when all are gone,
    // `all_closed` yields `None`.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let requests = Arc::new(AtomicU64::new(0));
    let forgetting = tokio::spawn(forget_idle_clients(Arc::downgrade(&server)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms))
        .max_buf_size(config.header_bytes_max);
    let write_timeout = Duration::from_millis(config.write_timeout_ms);
    let mut accept_failures = AcceptBackoff::default();
    tokio::pin!(shutdown);
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving");
    loop {
        // Wait for room before accepting: past connections_max, clients queue
        // in the kernel's backlog instead of in our memory.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("semaphore never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    accept_failures.succeeded();
                    accepted
                }
                Err(error) => {
                    // Out of file descriptors, say: wait, more each time, and
                    // say so once rather than on every attempt.
                    let pause = accept_failures.failed(&error);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let client = client_of(peer.ip());
        // Another instance forwards many clients' requests and sockets: its
        // clients were counted where they came in.
        let peer_instance = server.app.cluster().is_some_and(|c| c.is_peer(peer.ip()));
        let counted = match clients.open(client) {
            Some(counted) => Some(counted),
            None if peer_instance => None,
            None => {
                tracing::debug!(%client, "a client is over its connection limit; closing");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = server.clone();
        let held = Held::new(permit, counted, open.clone());
        let requests = requests.clone();
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let server = handler.clone();
            let held = held.clone();
            let id = request_id(&request, &requests);
            let span = tracing::info_span!(
                "request",
                id = %id,
                method = %request.method(),
                path = %request.uri().path(),
                session = tracing::field::Empty,
            );
            async move {
                let mut response = routes::handle(&server, client, request, held).await;
                if let Ok(id) = http::HeaderValue::from_str(&id) {
                    response.headers_mut().insert(REQUEST_ID, id);
                }
                Ok::<_, std::convert::Infallible>(response)
            }
            .instrument(span)
        });
        let io = TokioIo::new(WriteDeadline::new(stream, write_timeout));
        let connection = http.serve_connection(io, service).with_upgrades();
        let stopping = shutting_down(stopping.clone());
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    forgetting.abort();
    let _ = stop.send(true);
    drop(open);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    if tokio::time::timeout(grace, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period passed with requests still in flight");
    }
}

/// Resolves once the host is shutting down.
async fn shutting_down(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await.map(drop);
}

/// Echoes a request's id, or gives it one, so a client and the host's log
/// lines can name the same request.
const REQUEST_ID: &str = "x-request-id";

/// The request's own `X-Request-Id` if it is a short printable one, or
/// the next number of this host.
fn request_id<B>(request: &http::Request<B>, counter: &AtomicU64) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:x}", counter.fetch_add(1, Ordering::Relaxed)))
}

async fn forget_idle_clients(server: std::sync::Weak<Server>) {
    let mut ticker = tokio::time::interval(FORGET_IDLE_CLIENTS_EVERY);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(server) = server.upgrade() else {
            return;
        };
        server.rate_limits.forget_idle();
        server.app.accounts().forget_idle();
    }
}

/// Pauses after failed accepts: 10 ms, doubling up to a second, logged on
/// the first failure of a run and when accepting works again.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST_PAUSE_MS: u64 = 10;
    const LONGEST_PAUSE_MS: u64 = 1000;

    fn failed(&mut self, error: &std::io::Error) -> Duration {
        if self.failures == 0 {
            tracing::warn!(%error, "accepting connections failed; retrying with backoff");
        }
        self.failures = self.failures.saturating_add(1);
        let pause_ms = Self::FIRST_PAUSE_MS
            .saturating_mul(1 << (self.failures - 1).min(10))
            .min(Self::LONGEST_PAUSE_MS);
        Duration::from_millis(pause_ms)
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
    }
}
