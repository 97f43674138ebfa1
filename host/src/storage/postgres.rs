//! The PostgreSQL cold backend (sqlx): records, transactions, queries and
//! history as real SQL, with the schema in `migrations/`.
//!
//! Every write is one Postgres transaction, so what the WIT calls atomic is
//! atomic here. Versions are checked inside it (`UPDATE ... WHERE version =`
//! and `INSERT ... ON CONFLICT`), so concurrent writers cannot both win.
//! Queries translate [`Condition`]s to SQL with the same meaning as
//! `query::Condition::matches`; equality on a scalar is also sent as JSONB
//! containment so the GIN index on `doc` can serve it.

use crate::storage::{
    Applied, ColdStore, ColdWrite, Compare, Condition, Error, HistoryEntry, Namespace, Op, Page,
    Record, RecordWrite, Result,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded from `migrations/` at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Settings of the Postgres backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    pub url: String,
    /// Most connections in the pool.
    pub pool_max: u32,
    /// Longest wait for a free connection before a call is `unavailable`.
    pub acquire_timeout_ms: u64,
    /// Longest one statement may run; past it Postgres cancels it and the call
    /// is `unavailable`.
    pub statement_timeout_ms: u64,
    /// Apply `migrations/` at start (as `hoard migrate` does).
    pub migrate_on_start: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: "postgres://postgres@127.0.0.1:5432/hoard".into(),
            pool_max: 16,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 5000,
            migrate_on_start: true,
        }
    }
}

/// Why Postgres could not be used at start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "cannot reach PostgreSQL at {url}: {reason} (is postgres running and the database created? e.g. `createdb -h 127.0.0.1 -U postgres hoard`, or set storage.postgres.url)"
    )]
    Connect { url: String, reason: String },
    #[error("cannot apply the migrations in migrations/ to {url}: {reason}")]
    Migrate { url: String, reason: String },
}

/// Cold storage on PostgreSQL.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects a pool (and applies migrations if configured).
    pub async fn connect(config: &PostgresConfig) -> std::result::Result<Self, ConnectError> {
        let failed = |reason: String| ConnectError::Connect {
            url: redact(&config.url),
            reason,
        };
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| failed(e.to_string()))?
            .options([("statement_timeout", config.statement_timeout_ms.to_string())]);
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_max.max(1))
            // No health ping on every checkout: it costs a round trip per
            // statement, and a dead connection fails its statement anyway
            // (reported `unavailable`) and is dropped by the pool.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_with(options)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let store = PostgresStore { pool };
        if config.migrate_on_start {
            store
                .migrate()
                .await
                .map_err(|reason| ConnectError::Migrate {
                    url: redact(&config.url),
                    reason,
                })?;
        }
        Ok(store)
    }

    /// Applies every migration not yet applied; returns how many exist.
    pub async fn migrate(&self) -> std::result::Result<usize, String> {
        MIGRATOR.run(&self.pool).await.map_err(|e| e.to_string())?;
        Ok(MIGRATOR.iter().count())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Hides a password in a connection URL before it reaches a log or message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Maps sqlx errors onto the guest's error. Only the database's verdict on
/// the guest's data is `invalid`; timeouts, lost connections and the rest are
/// `unavailable`.
fn convert(error: sqlx::Error) -> Error {
    if let Some(database) = error.as_database_error() {
        match database.code().as_deref() {
            // invalid_text_representation, untranslatable_character,
            // character_not_in_repertoire: JSON Postgres will not store
            // (for example a \u0000 escape).
            Some("22P02" | "22P05" | "22021") => {
                return Error::invalid(
                    "body",
                    format!("postgres refused the document: {}", database.message()),
                );
            }
            Some("57014") => {
                return Error::Unavailable("postgres cancelled a statement at its timeout".into());
            }
            _ => {}
        }
    }
    Error::Unavailable(format!("postgres: {error}"))
}

/// The version a record has now, 0 if absent.
async fn current_version(
    tx: &mut PgConnection,
    ns: &Namespace,
    collection: &str,
    key: &str,
) -> Result<u64> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM records WHERE namespace = $1 AND collection = $2 AND key = $3",
    )
    .bind(ns.as_str())
    .bind(collection.as_bytes())
    .bind(key.as_bytes())
    .fetch_optional(&mut *tx)
    .await
    .map_err(convert)?;
    Ok(version.unwrap_or(0) as u64)
}

/// One record write, as one statement (atomic by itself, or inside the
/// caller's transaction): the new version for a put, 1 or 0 (existed) for a
/// delete. After a failed version check a second statement reads the current
/// version for the conflict report.
async fn write_record(tx: &mut PgConnection, ns: &Namespace, write: &RecordWrite) -> Result<u64> {
    let (collection, key) = (write.collection(), write.key());
    let conflict = |expected, current| Error::Conflict { expected, current };
    match write {
        RecordWrite::Put {
            body,
            expected_version,
            ..
        } => {
            let sql = match expected_version {
                None => {
                    "INSERT INTO records (namespace, collection, key, version, body) VALUES ($1, $2, $3, 1, $4)
                     ON CONFLICT (namespace, collection, key)
                     DO UPDATE SET version = records.version + 1, body = EXCLUDED.body, updated_at = now()
                     RETURNING version"
                }
                Some(0) => {
                    "INSERT INTO records (namespace, collection, key, version, body) VALUES ($1, $2, $3, 1, $4)
                     ON CONFLICT (namespace, collection, key) DO NOTHING RETURNING version"
                }
                Some(_) => {
                    "UPDATE records SET version = version + 1, body = $4, updated_at = now()
                     WHERE namespace = $1 AND collection = $2 AND key = $3 AND version = $5 RETURNING version"
                }
            };
            let version: Option<i64> = sqlx::query_scalar(sql)
                .bind(ns.as_str())
                .bind(collection.as_bytes())
                .bind(key.as_bytes())
                .bind(body)
                .bind(expected_version.unwrap_or(0) as i64)
                .fetch_optional(&mut *tx)
                .await
                .map_err(convert)?;
            match (version, expected_version) {
                (Some(version), _) => Ok(version as u64),
                (None, Some(expected)) => Err(conflict(
                    *expected,
                    current_version(tx, ns, collection, key).await?,
                )),
                (None, None) => Err(Error::Unavailable(
                    "postgres upsert returned no version".into(),
                )),
            }
        }
        RecordWrite::Delete {
            expected_version, ..
        } => {
            let deleted: Option<i64> = sqlx::query_scalar(
                "DELETE FROM records WHERE namespace = $1 AND collection = $2 AND key = $3
                 AND ($4::BIGINT IS NULL OR version = $4) RETURNING version",
            )
            .bind(ns.as_str())
            .bind(collection.as_bytes())
            .bind(key.as_bytes())
            .bind(expected_version.map(|v| v as i64))
            .fetch_optional(&mut *tx)
            .await
            .map_err(convert)?;
            match (deleted, expected_version) {
                (Some(_), _) => Ok(1),
                (None, None) => Ok(0),
                (None, Some(expected)) => {
                    let current = current_version(tx, ns, collection, key).await?;
                    // Expecting "absent" of an absent record is no conflict.
                    if current == 0 && *expected == 0 {
                        Ok(0)
                    } else {
                        Err(conflict(*expected, current))
                    }
                }
            }
        }
    }
}

/// The smallest byte string greater than every string starting with
/// `prefix`; `None` when there is none (empty or all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn record(row: &sqlx::postgres::PgRow) -> Result<Record> {
    let key: Vec<u8> = row.try_get("key").map_err(convert)?;
    Ok(Record {
        key: String::from_utf8(key)
            .map_err(|_| Error::Unavailable("postgres: a stored key is not UTF-8".into()))?,
        version: row.try_get::<i64, _>("version").map_err(convert)? as u64,
        body: row.try_get("body").map_err(convert)?,
    })
}

/// Appends one condition's SQL, with the same meaning as
/// `Condition::matches`.
fn push_condition(sql: &mut QueryBuilder<Postgres>, condition: &Condition) {
    let path: Vec<String> = condition.path.clone();
    let op = match condition.compare {
        Compare::Eq => "=",
        Compare::Ne => "<>",
        Compare::Lt => "<",
        Compare::Le => "<=",
        Compare::Gt => ">",
        Compare::Ge => ">=",
    };
    match &condition.value {
        Value::Number(number) => {
            // CASE, not AND: Postgres may evaluate AND's operands in any
            // order, and the cast fails on a non-number.
            sql.push("(CASE WHEN jsonb_typeof(doc #> ")
                .push_bind(path.clone())
                .push(") = 'number' THEN (doc #> ");
            sql.push_bind(path)
                .push(")::numeric ")
                .push(op)
                .push(" ")
                .push_bind(number.to_string());
            sql.push("::numeric ELSE FALSE END)");
        }
        Value::String(text) => {
            sql.push("(jsonb_typeof(doc #> ")
                .push_bind(path.clone())
                .push(") = 'string' AND (doc #>> ");
            sql.push_bind(path)
                .push(") COLLATE \"C\" ")
                .push(op)
                .push(" ")
                .push_bind(text.clone())
                .push(" COLLATE \"C\")");
        }
        other => match condition.compare {
            Compare::Eq | Compare::Ne => {
                sql.push("(jsonb_typeof(doc #> ")
                    .push_bind(path.clone())
                    .push(") = jsonb_typeof(");
                sql.push_bind(other.to_string())
                    .push("::jsonb) AND doc #> ")
                    .push_bind(path);
                sql.push(" ")
                    .push(op)
                    .push(" ")
                    .push_bind(other.to_string())
                    .push("::jsonb)");
            }
            _ => {
                sql.push("FALSE");
            }
        },
    }
    if condition.compare == Compare::Eq
        && !matches!(condition.value, Value::Array(_) | Value::Object(_))
    {
        // The same test as containment, which the GIN index serves.
        let contained = condition.path.iter().rev().fold(
            condition.value.clone(),
            |inner, name| serde_json::json!({ name.clone(): inner }),
        );
        sql.push(" AND doc @> ")
            .push_bind(contained.to_string())
            .push("::jsonb");
    }
}

#[async_trait]
impl ColdStore for PostgresStore {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        let ns = &op.namespace;
        match &op.write {
            // One statement is atomic on its own: no BEGIN/COMMIT round trips.
            ColdWrite::Record(write) => {
                let mut connection = self.pool.acquire().await.map_err(convert)?;
                let result = write_record(&mut connection, ns, write).await?;
                Ok(match write {
                    RecordWrite::Put { .. } => Applied::Version(result),
                    RecordWrite::Delete { .. } => Applied::Existed(result == 1),
                })
            }
            ColdWrite::Transaction(writes) => {
                let mut tx = self.pool.begin().await.map_err(convert)?;
                let mut versions = Vec::with_capacity(writes.len());
                for write in writes {
                    // An error returns early and drops `tx`: a rollback.
                    let result = write_record(&mut tx, ns, write).await?;
                    versions.push(if matches!(write, RecordWrite::Delete { .. }) {
                        0
                    } else {
                        result
                    });
                }
                tx.commit().await.map_err(convert)?;
                Ok(Applied::Versions(versions))
            }
            ColdWrite::AppendHistory { stream, body } => {
                // Bumping the head and inserting the entry in one statement:
                // atomic, and concurrent appends serialise on the head row.
                let seq: i64 = sqlx::query_scalar(
                    "WITH head AS (
                         INSERT INTO history_heads (namespace, stream, last_seq) VALUES ($1, $2, 1)
                         ON CONFLICT (namespace, stream) DO UPDATE SET last_seq = history_heads.last_seq + 1
                         RETURNING last_seq
                     )
                     INSERT INTO history (namespace, stream, seq, body) SELECT $1, $2, last_seq, $3 FROM head
                     RETURNING seq",
                )
                .bind(ns.as_str())
                .bind(stream.as_bytes())
                .bind(body)
                .fetch_one(&self.pool)
                .await
                .map_err(convert)?;
                Ok(Applied::Seq(seq as u64))
            }
        }
    }

    async fn get(&self, ns: &Namespace, collection: &str, key: &str) -> Result<Option<Record>> {
        let row = sqlx::query("SELECT key, version, body FROM records WHERE namespace = $1 AND collection = $2 AND key = $3")
            .bind(ns.as_str())
            .bind(collection.as_bytes())
            .bind(key.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(convert)?;
        row.as_ref().map(record).transpose()
    }

    async fn list(
        &self,
        ns: &Namespace,
        collection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        let after = cursor.map(crate::storage::cursor::decode).transpose()?;
        let mut sql =
            QueryBuilder::new("SELECT key, version, body FROM records WHERE namespace = ");
        sql.push_bind(ns.as_str())
            .push(" AND collection = ")
            .push_bind(collection.as_bytes().to_vec());
        sql.push(" AND key >= ")
            .push_bind(prefix.as_bytes().to_vec());
        if let Some(end) = prefix_end(prefix.as_bytes()) {
            sql.push(" AND key < ").push_bind(end);
        }
        if let Some(after) = after {
            sql.push(" AND key > ").push_bind(after);
        }
        sql.push(" ORDER BY key LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = sql.build().fetch_all(&self.pool).await.map_err(convert)?;
        let records = rows.iter().map(record).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(records, limit))
    }

    async fn query(
        &self,
        ns: &Namespace,
        collection: &str,
        conditions: &[Condition],
        limit: u32,
    ) -> Result<Vec<Record>> {
        let mut sql =
            QueryBuilder::new("SELECT key, version, body FROM records WHERE namespace = ");
        sql.push_bind(ns.as_str())
            .push(" AND collection = ")
            .push_bind(collection.as_bytes().to_vec());
        for condition in conditions {
            sql.push(" AND ");
            push_condition(&mut sql, condition);
        }
        sql.push(" ORDER BY key LIMIT ").push_bind(i64::from(limit));
        let rows = sql.build().fetch_all(&self.pool).await.map_err(convert)?;
        rows.iter().map(record).collect()
    }

    async fn read_history(
        &self,
        ns: &Namespace,
        stream: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT last_seq FROM history_heads WHERE namespace = $1 AND stream = $2",
        )
        .bind(ns.as_str())
        .bind(stream.as_bytes())
        .fetch_optional(&self.pool)
        .await
        .map_err(convert)?;
        if exists.is_none() {
            return Err(Error::NotFound);
        }
        let rows = sqlx::query(
            "SELECT seq, body FROM history WHERE namespace = $1 AND stream = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(ns.as_str())
        .bind(stream.as_bytes())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(convert)?;
        rows.iter()
            .map(|row| {
                Ok(HistoryEntry {
                    seq: row.try_get::<i64, _>("seq").map_err(convert)? as u64,
                    body: row.try_get("body").map_err(convert)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(convert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_and_redaction() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
