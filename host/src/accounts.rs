//! Player accounts: a name and a secret, so that a player exists beyond one
//! session (a plugin keys what it keeps about a player by the account's id).
//!
//! Accounts are cold records under the host's namespace, in the collection
//! `accounts`, keyed by the name in lower case (so `Alice` and `alice` are
//! one account): they live wherever cold storage does, sled offline and
//! PostgreSQL in service mode. A record holds the account's id (random,
//! never reused), its name as registered, its secret hashed with Argon2id
//! (a PHC string: the secret itself is never stored or logged), and the
//! SHA-256 hashes of its live tokens, at most `accounts.tokens_max` of
//! them, each with its expiry.
//!
//! An account token is `<account key>.<64 hex digits>`: the key says which
//! record to read, the random part proves the login. Logins are limited per
//! account here (per address in `api::rate`), and a failed login takes as
//! long whether or not the name exists.

use crate::config::RateLimit;
use crate::session::{constant_time_eq, hex};
use crate::storage::sled::now_ms;
use crate::storage::{self, ColdStore, ColdWrite, Namespace, Op, RecordWrite};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Settings of accounts (`[accounts]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// How long an account token stays valid after its login.
    pub token_ttl_ms: u64,
    /// Live tokens per account (one per device, say); a login past it
    /// ends the oldest.
    pub tokens_max: usize,
    /// The shortest secret accepted, in bytes.
    pub secret_bytes_min: usize,
    /// How often anyone may try to log in to one account.
    pub logins_per_account: RateLimit,
    /// Whether a player may bring their own data in
    /// (`POST /v1/accounts/me/import`): records a dump from another host
    /// holds for the plugins' account collections. The dump is the
    /// player's to send, and so to change: turn it on where players may
    /// bring progress made elsewhere (their own offline host, another
    /// server of yours). Off by default; `configs/offline.toml` turns it
    /// on.
    pub imports: bool,
    /// The largest dump an import takes (its body).
    pub import_bytes_max: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            token_ttl_ms: 30 * 24 * 3600 * 1000,
            tokens_max: 8,
            secret_bytes_min: 8,
            logins_per_account: RateLimit {
                per_minute: 10,
                burst: 5,
            },
            imports: false,
            import_bytes_max: 8 * 1024 * 1024,
        }
    }
}

/// The longest secret accepted, in bytes: hashing is the expensive part
/// of a login, and a longer secret buys nothing.
pub const SECRET_BYTES_MAX: usize = 1024;

/// The collection of account records in the host's namespace.
const COLLECTION: &str = "accounts";

/// How often a login retries when another login changed the record first.
const CONFLICT_RETRIES: usize = 8;

/// An account, as the rest of the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Stable and never reused: what plugins key a player's data by.
    pub id: String,
    /// The name as registered.
    pub name: String,
}

/// What an account keeps.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AccountRecord {
    id: String,
    name: String,
    /// Argon2id, as a PHC string (algorithm, parameters, salt and hash).
    secret: String,
    created_ms: u64,
    tokens: Vec<TokenRecord>,
    /// An operator disabled it: no login, no account token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    disabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TokenRecord {
    /// SHA-256 of the token, in hex.
    hash: String,
    expires_ms: u64,
}

/// An account as an operator sees it (`GET /admin/v1/accounts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub created_ms: u64,
    /// Account tokens not yet expired.
    pub live_tokens: usize,
    pub disabled: bool,
}

impl AccountRecord {
    fn info(&self) -> AccountInfo {
        let now = now_ms();
        AccountInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            created_ms: self.created_ms,
            live_tokens: self.tokens.iter().filter(|t| t.expires_ms > now).count(),
            disabled: self.disabled,
        }
    }

    fn account(&self) -> Account {
        Account {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

/// Why an account call failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid name: use 1 to 32 letters, digits, '-' or '_'")]
    InvalidName,
    #[error("the secret must be {min} to {max} bytes")]
    BadSecret { min: usize, max: usize },
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    #[error("no account has this name and secret")]
    BadCredentials,
    #[error("the account token is not valid (unknown, expired or ended by later logins)")]
    BadToken,
    #[error("not a cursor from an earlier page of this listing")]
    BadCursor,
    #[error("this account is disabled")]
    Disabled,
    #[error("no account is named {0:?}")]
    NoSuchAccount(String),
    #[error("too many login attempts for this account; try again in {} s", .0.as_secs().max(1))]
    TooManyAttempts(Duration),
    #[error(transparent)]
    Storage(#[from] storage::Error),
}

type Result<T> = std::result::Result<T, AccountError>;

/// Every account of this host.
pub struct Accounts {
    cold: Arc<dyn ColdStore>,
    config: AccountsConfig,
    logins: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

/// Whether `name` may name an account or a player: 1 to 32 ASCII letters,
/// digits, `-` or `_`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The record key of the account named `name` (any case).
fn key_of(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Hashes a secret with Argon2id (OWASP's parameters: 19 MiB, 2 passes).
fn hash_secret(secret: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("Argon2 hashes any secret up to SECRET_BYTES_MAX")
        .to_string()
}

fn secret_matches(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash no secret matches, checked when a name has no account so that a
/// failed login takes as long either way.
static NOBODY: LazyLock<String> = LazyLock::new(|| hash_secret("no account has this secret"));

/// Argon2 runs at most this many at once (19 MiB and tens of
/// milliseconds each): more logins wait their turn, so a flood from many
/// addresses costs time, not memory or the blocking pool.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Runs Argon2 off the async threads, a few at a time. The permit goes
/// with the work, so a client that hangs up does not free it early.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let turn = HASHING.acquire().await.expect("never closed");
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        work()
    })
    .await
    .expect("hashing does not panic")
}

impl Accounts {
    pub fn new(cold: Arc<dyn ColdStore>, config: AccountsConfig) -> Self {
        let limit = &config.logins_per_account;
        let quota = Quota::per_minute(NonZeroU32::new(limit.per_minute.max(1)).expect("> 0"))
            .allow_burst(NonZeroU32::new(limit.burst.max(1)).expect("> 0"));
        Accounts {
            cold,
            logins: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            config,
        }
    }

    fn check_secret(&self, secret: &str) -> Result<()> {
        if (self.config.secret_bytes_min..=SECRET_BYTES_MAX).contains(&secret.len()) {
            Ok(())
        } else {
            Err(AccountError::BadSecret {
                min: self.config.secret_bytes_min,
                max: SECRET_BYTES_MAX,
            })
        }
    }

    async fn read(&self, key: &str) -> Result<Option<(u64, AccountRecord)>> {
        let Some(record) = self.cold.get(&Namespace::host(), COLLECTION, key).await? else {
            return Ok(None);
        };
        let account = serde_json::from_str(&record.body).map_err(|e| {
            storage::Error::Unavailable(format!("account record {key:?} is damaged: {e}"))
        })?;
        Ok(Some((record.version, account)))
    }

    async fn write(&self, key: &str, record: &AccountRecord, expected: u64) -> Result<()> {
        let body = serde_json::to_string(record).expect("an account record serializes");
        let write = ColdWrite::Record(RecordWrite::Put {
            collection: COLLECTION.into(),
            key: key.to_owned(),
            body,
            expected_version: Some(expected),
        });
        self.cold.apply(&Op::new(Namespace::host(), write)).await?;
        Ok(())
    }

    /// Whether an account is named `name` (in any case).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .cold
            .get(&Namespace::host(), COLLECTION, &key_of(name))
            .await?
            .is_some())
    }

    /// Registers an account named `name` with `secret`.
    pub async fn register(&self, name: &str, secret: &str) -> Result<Account> {
        if !valid_name(name) {
            return Err(AccountError::InvalidName);
        }
        self.check_secret(secret)?;
        let key = key_of(name);
        if self.read(&key).await?.is_some() {
            return Err(AccountError::NameTaken(name.to_owned()));
        }
        let owned = secret.to_owned();
        let record = AccountRecord {
            id: hex(&rand::random::<[u8; 16]>()),
            name: name.to_owned(),
            secret: blocking(move || hash_secret(&owned)).await,
            created_ms: now_ms(),
            tokens: Vec::new(),
            disabled: false,
        };
        // Version 0 expected: only if nobody registered the name meanwhile.
        match self.write(&key, &record, 0).await {
            Err(AccountError::Storage(storage::Error::Conflict { .. })) => {
                Err(AccountError::NameTaken(name.to_owned()))
            }
            written => written.map(|()| record.account()),
        }
    }

    /// Checks `name` and `secret` and hands out a new account token.
    pub async fn login(&self, name: &str, secret: &str) -> Result<(Account, String)> {
        if !valid_name(name) || self.check_secret(secret).is_err() {
            return Err(AccountError::BadCredentials);
        }
        let key = key_of(name);
        self.logins.check_key(&key).map_err(|not_until| {
            AccountError::TooManyAttempts(not_until.wait_time_from(self.clock.now()))
        })?;
        let found = self.read(&key).await?;
        let stored = found
            .as_ref()
            .map_or_else(|| NOBODY.clone(), |(_, record)| record.secret.clone());
        let owned = secret.to_owned();
        let matches = blocking(move || secret_matches(&owned, &stored)).await;
        let (mut version, mut record) = match found {
            Some(found) if matches => found,
            _ => return Err(AccountError::BadCredentials),
        };
        if record.disabled {
            return Err(AccountError::Disabled);
        }
        let token = format!("{key}.{}", hex(&rand::random::<[u8; 32]>()));
        let entry = TokenRecord {
            hash: token_hash(&token),
            expires_ms: now_ms().saturating_add(self.config.token_ttl_ms),
        };
        for _ in 0..CONFLICT_RETRIES {
            if record.disabled {
                // Disabled meanwhile (checked again after every re-read).
                return Err(AccountError::Disabled);
            }
            let now = now_ms();
            record.tokens.retain(|t| t.expires_ms > now);
            record.tokens.push(entry.clone());
            let excess = record
                .tokens
                .len()
                .saturating_sub(self.config.tokens_max.max(1));
            record.tokens.drain(..excess);
            match self.write(&key, &record, version).await {
                Ok(()) => return Ok((record.account(), token)),
                Err(AccountError::Storage(storage::Error::Conflict { .. })) => {
                    // Another login came first: add ours to what it left.
                    (version, record) =
                        self.read(&key).await?.ok_or(AccountError::BadCredentials)?;
                }
                Err(error) => return Err(error),
            }
        }
        Err(storage::Error::Unavailable("the account kept changing during the login".into()).into())
    }

    /// The account an account token belongs to.
    pub async fn by_token(&self, token: &str) -> Result<Account> {
        let Some((key, _)) = token.split_once('.') else {
            return Err(AccountError::BadToken);
        };
        if !valid_name(key) {
            return Err(AccountError::BadToken);
        }
        let (_, record) = self.read(key).await?.ok_or(AccountError::BadToken)?;
        let presented = token_hash(token);
        let now = now_ms();
        let held = record.tokens.iter().any(|t| {
            t.expires_ms > now && constant_time_eq(t.hash.as_bytes(), presented.as_bytes())
        });
        // A disabled account holds no token: only a token it held says so.
        match (held, record.disabled) {
            (true, false) => Ok(record.account()),
            (true, true) => Err(AccountError::Disabled),
            (false, _) => Err(AccountError::BadToken),
        }
    }

    /// Up to `limit` accounts whose names start with `prefix` (in any
    /// case), in name order from `cursor` on, and the cursor of the rest.
    pub async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<AccountInfo>, Option<String>)> {
        let page = self
            .cold
            .list(
                &Namespace::host(),
                COLLECTION,
                &key_of(prefix),
                cursor,
                limit,
            )
            .await
            .map_err(|error| match error {
                storage::Error::Invalid { .. } => AccountError::BadCursor,
                error => error.into(),
            })?;
        let mut accounts = Vec::with_capacity(page.records.len());
        for record in &page.records {
            let account: AccountRecord = serde_json::from_str(&record.body).map_err(|e| {
                storage::Error::Unavailable(format!(
                    "account record {:?} is damaged: {e}",
                    record.key
                ))
            })?;
            accounts.push(account.info());
        }
        Ok((accounts, page.next_cursor))
    }

    /// Disables (or enables again) the account named `name`. Disabling ends
    /// its account tokens and refuses its logins; seats it holds in sessions
    /// keep their own tokens.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<AccountInfo> {
        let key = key_of(name);
        for _ in 0..CONFLICT_RETRIES {
            let (version, mut record) = self
                .read(&key)
                .await?
                .ok_or_else(|| AccountError::NoSuchAccount(name.to_owned()))?;
            if record.disabled == disabled {
                return Ok(record.info());
            }
            record.disabled = disabled;
            if disabled {
                record.tokens.clear();
            }
            match self.write(&key, &record, version).await {
                Ok(()) => return Ok(record.info()),
                Err(AccountError::Storage(storage::Error::Conflict { .. })) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(storage::Error::Unavailable("the account kept changing".into()).into())
    }

    /// Forgets accounts whose login buckets are full again.
    pub fn forget_idle(&self) {
        self.logins.retain_recent();
        self.logins.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_hash_only() {
        let stored = hash_secret("correct horse");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(secret_matches("correct horse", &stored));
        assert!(!secret_matches("correct horsf", &stored));
        assert!(!secret_matches("correct horse", &NOBODY));
        assert!(!secret_matches("correct horse", "not a hash"));
    }

    #[test]
    fn names_are_checked_and_keyed_without_case() {
        assert!(valid_name("Alice_2-b"));
        for bad in ["", "a b", "é", "x".repeat(33).as_str(), "a.b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_eq!(key_of("Alice"), key_of("aLICE"));
    }
}
