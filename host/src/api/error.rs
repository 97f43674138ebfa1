//! API errors: each maps to one status and one stable code. Messages never
//! carry backend text.

use crate::accounts::AccountError;
use crate::rpc::RpcError;
use crate::session::SessionError;
use crate::storage;
use crate::wasm::{Fault, Refusal};
use http::StatusCode;

/// An error as a client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable snake_case code for programs.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Seconds to wait before trying again: sent as `Retry-After`.
    pub retry_after_s: Option<u64>,
    /// The methods the route allows: sent as `Allow` (with 405).
    pub allow: Option<&'static str>,
    /// Close the connection after answering: the request's body was not
    /// read to its end.
    pub close: bool,
    /// One more header the answer carries (426's `Upgrade`, say).
    pub header: Option<(&'static str, &'static str)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after_s: None,
            allow: None,
            close: false,
            header: None,
        }
    }

    /// Adds `Retry-After`, rounded up to whole seconds.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after_s = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        self
    }

    pub fn allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string()
    }
}

/// A plugin's own code, if it is a tidy snake_case word; otherwise `fallback`.
fn plugin_code(code: &str, fallback: &str) -> String {
    let tidy = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if tidy {
        code.to_owned()
    } else {
        fallback.to_owned()
    }
}

fn plugin_message(message: &str) -> String {
    message.chars().take(500).collect()
}

/// A storage error that ends a request, whether the host's own storage
/// call failed or a plugin's did and the plugin passed the error on. Only
/// `unavailable` (and a full outbox) say "try later"; a conflict says "try
/// again now"; the rest are a refusal the request cannot get past.
impl From<storage::Error> for ApiError {
    fn from(error: storage::Error) -> Self {
        use StatusCode as S;
        tracing::warn!(%error, "storage error");
        match error {
            storage::Error::LimitExceeded {
                what: "outbox-ops" | "outbox-bytes",
                ..
            } => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "outbox_full",
                "storage is down and the host's queue of writes is full; nothing was changed, try again later",
            ),
            storage::Error::Unavailable(_) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage is unavailable; nothing was changed, try again",
            ),
            storage::Error::Conflict { expected, current } => ApiError::new(
                S::CONFLICT,
                "storage_conflict",
                format!(
                    "a record changed while this request wrote it (expected version {expected}, found {current}); try again"
                ),
            ),
            error @ (storage::Error::NotFound
            | storage::Error::Invalid { .. }
            | storage::Error::LimitExceeded { .. }) => ApiError::new(
                S::INTERNAL_SERVER_ERROR,
                "storage_refused",
                format!("storage refused a call: {error}"),
            ),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        use StatusCode as S;
        match error {
            SessionError::UnknownGame(game) => ApiError::new(
                S::NOT_FOUND,
                "unknown_game",
                format!("no game named {game:?} is loaded"),
            ),
            error @ SessionError::VersionGone { .. } => {
                ApiError::new(S::CONFLICT, "version_unavailable", error.to_string())
            }
            SessionError::UnknownSession => {
                ApiError::new(S::NOT_FOUND, "unknown_session", "no such session")
            }
            SessionError::BadToken => ApiError::new(
                S::UNAUTHORIZED,
                "bad_token",
                "the token does not belong to a player of this session",
            ),
            SessionError::NameTaken(_)
            | SessionError::AlreadySeated
            | SessionError::InvalidName
            | SessionError::DocumentTooLarge { .. }
            | SessionError::SeedNotAllowed
            | SessionError::BadIdempotencyKey
            | SessionError::IdempotencyKeyReused => {
                let (status, code) = match error {
                    SessionError::NameTaken(_) => (S::CONFLICT, "name_taken"),
                    SessionError::AlreadySeated => (S::CONFLICT, "already_seated"),
                    SessionError::InvalidName => (S::BAD_REQUEST, "invalid_name"),
                    SessionError::SeedNotAllowed => (S::FORBIDDEN, "seed_not_allowed"),
                    SessionError::BadIdempotencyKey => (S::BAD_REQUEST, "bad_idempotency_key"),
                    SessionError::IdempotencyKeyReused => {
                        (S::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
                    }
                    _ => (S::PAYLOAD_TOO_LARGE, "document_too_large"),
                };
                ApiError::new(status, code, error.to_string())
            }
            SessionError::Refused(refusal) => match refusal {
                Refusal::Malformed { code, message } => ApiError::new(
                    S::BAD_REQUEST,
                    &plugin_code(&code, "malformed_action"),
                    plugin_message(&message),
                ),
                Refusal::Illegal { code, message } => ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    &plugin_code(&code, "illegal_action"),
                    plugin_message(&message),
                ),
                Refusal::NotYourTurn => {
                    ApiError::new(S::CONFLICT, "not_your_turn", "it is not your turn")
                }
                Refusal::Full => {
                    ApiError::new(S::CONFLICT, "session_full", "the session has no free seat")
                }
                Refusal::NotSeated => ApiError::new(
                    S::FORBIDDEN,
                    "not_seated",
                    "you are not seated in this session",
                ),
                Refusal::Finished => {
                    ApiError::new(S::CONFLICT, "game_finished", "the game has ended")
                }
                Refusal::Storage(error) => error.into(),
            },
            SessionError::Fault(fault) => {
                tracing::warn!(%fault, "plugin fault");
                let code = match fault {
                    Fault::TimedOut { .. } | Fault::Stalled { .. } => "plugin_timeout",
                    Fault::OutOfMemory { .. } => "plugin_out_of_memory",
                    Fault::Trapped(_) => "plugin_failed",
                    Fault::Instantiate(_) => {
                        return ApiError::new(
                            S::SERVICE_UNAVAILABLE,
                            "busy",
                            "the host is at its limit of live sessions; try again",
                        );
                    }
                };
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    code,
                    format!("{fault}; nothing was changed"),
                )
            }
            SessionError::Storage(error) => error.into(),
            SessionError::Elsewhere(_) | SessionError::Moved => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "moved",
                "the session moved to another instance; nothing was changed, try again",
            )
            .retry_after(std::time::Duration::from_secs(1)),
        }
    }
}

impl From<crate::data::account::TransferError> for ApiError {
    fn from(error: crate::data::account::TransferError) -> Self {
        use crate::data::account::TransferError as E;
        let message = error.to_string();
        let (status, code) = match error {
            E::Storage(error) => return error.into(),
            E::Disabled => (StatusCode::FORBIDDEN, "imports_disabled"),
            E::BadDump(_) => (StatusCode::BAD_REQUEST, "bad_dump"),
            E::NotMovable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_movable"),
            E::Exists { .. } => (StatusCode::CONFLICT, "account_data_exists"),
        };
        ApiError::new(status, code, message)
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        use StatusCode as S;
        let (status, code) = match error {
            AccountError::Storage(error) => return error.into(),
            AccountError::TooManyAttempts(wait) => {
                return ApiError::new(S::TOO_MANY_REQUESTS, "rate_limited", error.to_string())
                    .retry_after(wait);
            }
            AccountError::InvalidName => (S::BAD_REQUEST, "invalid_name"),
            AccountError::BadSecret { .. } => (S::BAD_REQUEST, "bad_secret"),
            AccountError::NameTaken(_) => (S::CONFLICT, "name_taken"),
            AccountError::BadCredentials => (S::UNAUTHORIZED, "bad_credentials"),
            AccountError::BadToken => (S::UNAUTHORIZED, "bad_account_token"),
            AccountError::Disabled => (S::FORBIDDEN, "account_disabled"),
            AccountError::BadCursor => (S::BAD_REQUEST, "bad_query"),
            AccountError::NoSuchAccount(_) => (S::NOT_FOUND, "unknown_account"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<RpcError> for ApiError {
    fn from(error: RpcError) -> Self {
        match error {
            RpcError::UnknownGame(game) => SessionError::UnknownGame(game).into(),
            RpcError::UnknownRpc { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_rpc", error.to_string())
            }
            RpcError::Refused(refusal) => SessionError::Refused(refusal).into(),
            RpcError::Fault(fault) => {
                // A session's state stays as it was; an RPC has none, and
                // what it wrote before failing stands.
                let mut error = ApiError::from(SessionError::Fault(fault));
                if let Some(cause) = error.message.strip_suffix("; nothing was changed") {
                    error.message = format!("{cause}; writes the call made before stand");
                }
                error
            }
        }
    }
}
