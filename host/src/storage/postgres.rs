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
    Applied, ColdStore, ColdWrite, Compare, Condition, Error, ExportView, HistoryEntry, Item,
    ItemSink, Namespace, Op, OpId, Page, Record, RecordWrite, Result,
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
    /// How long the row of an applied op is kept in `applied_ops`: an op
    /// replayed or retried within it is not applied twice. It must outlast
    /// the longest outage the outbox rides out.
    pub dedupe_retention_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: "postgres://postgres@127.0.0.1:5432/hoard".into(),
            pool_max: 16,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 5000,
            migrate_on_start: true,
            dedupe_retention_ms: 24 * 3600 * 1000,
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
    /// Deletes expired `applied_ops` rows; stopped when the store goes.
    forgetting: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(task) = self.forgetting.take() {
            task.abort();
        }
    }
}

/// How often expired `applied_ops` rows are deleted, and how many at most
/// in one statement (so a backlog never holds locks for long).
const FORGET_OPS_EVERY: Duration = Duration::from_secs(60);
const FORGET_OPS_BATCH_MAX: i64 = 10_000;

/// Deletes `applied_ops` rows older than `retention`, a batch at a time.
async fn forget_applied_ops(pool: PgPool, retention: Duration) {
    let mut ticker = tokio::time::interval(FORGET_OPS_EVERY);
    loop {
        ticker.tick().await;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM applied_ops WHERE op_id IN (
                     SELECT op_id FROM applied_ops
                     WHERE applied_at < now() - make_interval(secs => $1)
                     LIMIT $2)",
            )
            .bind(retention.as_secs_f64())
            .bind(FORGET_OPS_BATCH_MAX)
            .execute(&pool)
            .await;
            match deleted {
                Ok(done) if done.rows_affected() as i64 == FORGET_OPS_BATCH_MAX => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::debug!(%error, "deleting expired op rows failed; trying again later");
                    break;
                }
            }
        }
    }
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
        let mut store = PostgresStore {
            pool,
            forgetting: None,
        };
        if config.migrate_on_start {
            store
                .migrate()
                .await
                .map_err(|reason| ConnectError::Migrate {
                    url: redact(&config.url),
                    reason,
                })?;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            store.forgetting = Some(tokio::spawn(forget_applied_ops(
                store.pool.clone(),
                Duration::from_millis(config.dedupe_retention_ms),
            )));
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

    /// Why this PostgreSQL would acknowledge commits it may lose, if it
    /// would: `synchronous_commit` and `fsync` must not be off.
    pub async fn durability_problem(&self) -> Result<Option<String>> {
        for (setting, sql) in [
            ("synchronous_commit", "SHOW synchronous_commit"),
            ("fsync", "SHOW fsync"),
        ] {
            let value: String = sqlx::query_scalar(sql)
                .fetch_one(&self.pool)
                .await
                .map_err(convert)?;
            if value == "off" {
                return Ok(Some(format!(
                    "PostgreSQL runs with {setting} = off: it acknowledges commits it can lose. Set {setting} = on, or set storage.require_durable = false for development"
                )));
            }
        }
        Ok(None)
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

/// What `convert` says when a concurrent duplicate of an op got its row in
/// `applied_ops` first: `apply` then tries once more and finds it.
const DUPLICATE_OP: &str = "postgres: the same op was applied concurrently";

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
            Some("23505") if database.constraint() == Some("applied_ops_pkey") => {
                return Error::Unavailable(DUPLICATE_OP.into());
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

/// The first result of an op applied before, kept in `applied_ops`.
fn earlier(result: Option<String>) -> Result<Option<Applied>> {
    result
        .map(|text| {
            Applied::decode(&text)
                .ok_or_else(|| Error::Unavailable(format!("postgres: op marker {text:?}")))
        })
        .transpose()
}

/// One record write as one statement, with its op marker: the write happens
/// only if the op has no row in `applied_ops`, and its row goes in with
/// it. Returns the op's result: the new version for a put, whether a
/// delete found its record. After a failed version check a second
/// statement reads the current version for the conflict report.
async fn write_record(
    connection: &mut PgConnection,
    op: OpId,
    ns: &Namespace,
    write: &RecordWrite,
) -> Result<Applied> {
    let (collection, key) = (write.collection(), write.key());
    let expected_version = write.expected_version();
    // $1 namespace, $2 collection, $3 key, $4 body (puts), $5 op id, $6
    // expected version.
    let sql = match (write, expected_version) {
        (RecordWrite::Put { .. }, None) => {
            "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
             w AS (
                 INSERT INTO records (namespace, collection, key, version, body)
                 SELECT $1, $2, $3, 1, $4 WHERE NOT EXISTS (SELECT 1 FROM earlier)
                 ON CONFLICT (namespace, collection, key)
                 DO UPDATE SET version = records.version + 1, body = EXCLUDED.body, updated_at = now()
                 RETURNING version
             ),
             mark AS (INSERT INTO applied_ops (op_id, result) SELECT $5, 'v' || version FROM w)
             SELECT (SELECT result FROM earlier), (SELECT version FROM w), NULL::BOOLEAN"
        }
        (RecordWrite::Put { .. }, Some(0)) => {
            "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
             w AS (
                 INSERT INTO records (namespace, collection, key, version, body)
                 SELECT $1, $2, $3, 1, $4 WHERE NOT EXISTS (SELECT 1 FROM earlier)
                 ON CONFLICT (namespace, collection, key) DO NOTHING
                 RETURNING version
             ),
             mark AS (INSERT INTO applied_ops (op_id, result) SELECT $5, 'v' || version FROM w)
             SELECT (SELECT result FROM earlier), (SELECT version FROM w), NULL::BOOLEAN"
        }
        (RecordWrite::Put { .. }, Some(_)) => {
            "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
             w AS (
                 UPDATE records SET version = version + 1, body = $4, updated_at = now()
                 WHERE namespace = $1 AND collection = $2 AND key = $3 AND version = $6
                   AND NOT EXISTS (SELECT 1 FROM earlier)
                 RETURNING version
             ),
             mark AS (INSERT INTO applied_ops (op_id, result) SELECT $5, 'v' || version FROM w)
             SELECT (SELECT result FROM earlier), (SELECT version FROM w), NULL::BOOLEAN"
        }
        (RecordWrite::Delete { .. }, _) => {
            // A delete that finds nothing is still applied when nothing was
            // expected; with an expected version it is a conflict (or, for
            // an absent record expected absent, nothing at all).
            "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
             w AS (
                 DELETE FROM records
                 WHERE namespace = $1 AND collection = $2 AND key = $3
                   AND ($6::BIGINT IS NULL OR version = $6)
                   AND NOT EXISTS (SELECT 1 FROM earlier)
                 RETURNING version
             ),
             mark AS (
                 INSERT INTO applied_ops (op_id, result)
                 SELECT $5, CASE WHEN EXISTS (SELECT 1 FROM w) THEN 'e1' ELSE 'e0' END
                 WHERE NOT EXISTS (SELECT 1 FROM earlier)
                   AND (EXISTS (SELECT 1 FROM w) OR $6::BIGINT IS NULL)
             )
             SELECT (SELECT result FROM earlier), (SELECT 1::BIGINT FROM w), $6::BIGINT IS NULL"
        }
    };
    let body = match write {
        RecordWrite::Put { body, .. } => body.as_str(),
        RecordWrite::Delete { .. } => "",
    };
    // The third column: for a delete, whether it expected nothing.
    let (marker, done, unconditional): (Option<String>, Option<i64>, Option<bool>) =
        sqlx::query_as(sql)
            .bind(ns.as_str())
            .bind(collection.as_bytes())
            .bind(key.as_bytes())
            .bind(body)
            .bind(&op.to_bytes()[..])
            .bind(expected_version.map(|v| v as i64))
            .fetch_one(&mut *connection)
            .await
            .map_err(convert)?;
    if let Some(earlier) = earlier(marker)? {
        return Ok(earlier);
    }
    match (write, done) {
        (RecordWrite::Put { .. }, Some(version)) => return Ok(Applied::Version(version as u64)),
        (RecordWrite::Delete { .. }, Some(_)) => return Ok(Applied::Existed(true)),
        (RecordWrite::Delete { .. }, None) if unconditional == Some(true) => {
            return Ok(Applied::Existed(false));
        }
        (RecordWrite::Put { .. }, None) if expected_version.is_none() => {
            return Err(Error::Unavailable(
                "postgres upsert returned no version".into(),
            ));
        }
        _ => {}
    }
    let expected = expected_version.unwrap_or(0);
    let current = current_version(connection, ns, collection, key).await?;
    if matches!(write, RecordWrite::Delete { .. }) && current == 0 && expected == 0 {
        // Expecting "absent" of an absent record is no conflict.
        return Ok(Applied::Existed(false));
    }
    Err(Error::Conflict { expected, current })
}

/// Record writes, all or nothing, through `hoard_apply_records` (see
/// `migrations/0002_applied_ops.sql`): one round trip however many writes.
/// Returns the per-write outcomes (a put's version, 1 or 0 for whether a
/// delete found its record).
async fn apply_records(
    connection: &mut PgConnection,
    op: OpId,
    ns: &Namespace,
    writes: &[RecordWrite],
) -> Result<Vec<u64>> {
    let encoded: Vec<Value> = writes
        .iter()
        .map(|write| {
            let mut entry = serde_json::json!({
                "put": matches!(write, RecordWrite::Put { .. }),
                "c": hex(write.collection().as_bytes()),
                "k": hex(write.key().as_bytes()),
                "e": write.expected_version(),
            });
            if let RecordWrite::Put { body, .. } = write {
                entry["b"] = Value::String(body.clone());
            }
            entry
        })
        .collect();
    let result: std::result::Result<String, sqlx::Error> =
        sqlx::query_scalar("SELECT hoard_apply_records($1, $2, $3)")
            .bind(&op.to_bytes()[..])
            .bind(ns.as_str())
            .bind(sqlx::types::Json(encoded))
            .fetch_one(&mut *connection)
            .await;
    let text = match result {
        Ok(text) => text,
        Err(error) => {
            if let Some(database) = error.as_database_error()
                && database.code().as_deref() == Some("HR409")
                && let Some((expected, current)) = database.message().split_once(':')
                && let (Ok(expected), Ok(current)) = (expected.parse(), current.parse())
            {
                return Err(Error::Conflict { expected, current });
            }
            return Err(convert(error));
        }
    };
    match Applied::decode(&text) {
        Some(Applied::Versions(outcomes)) if outcomes.len() == writes.len() => Ok(outcomes),
        _ => Err(Error::Unavailable(format!(
            "postgres: transaction answered {text:?}"
        ))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bumps the stream's head and inserts the entry in one statement, with the
/// op's marker: atomic, and concurrent appends serialise on the head row.
async fn append_history(
    connection: &mut PgConnection,
    op: OpId,
    ns: &Namespace,
    stream: &str,
    body: &str,
) -> Result<Applied> {
    let (marker, seq): (Option<String>, Option<i64>) = sqlx::query_as(
        "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $4),
         head AS (
             INSERT INTO history_heads (namespace, stream, last_seq)
             SELECT $1, $2, 1 WHERE NOT EXISTS (SELECT 1 FROM earlier)
             ON CONFLICT (namespace, stream) DO UPDATE SET last_seq = history_heads.last_seq + 1
             RETURNING last_seq
         ),
         entry AS (
             INSERT INTO history (namespace, stream, seq, body) SELECT $1, $2, last_seq, $3 FROM head
             RETURNING seq
         ),
         mark AS (INSERT INTO applied_ops (op_id, result) SELECT $4, 'q' || seq FROM entry)
         SELECT (SELECT result FROM earlier), (SELECT seq FROM entry)",
    )
    .bind(ns.as_str())
    .bind(stream.as_bytes())
    .bind(body)
    .bind(&op.to_bytes()[..])
    .fetch_one(&mut *connection)
    .await
    .map_err(convert)?;
    if let Some(earlier) = earlier(marker)? {
        return Ok(earlier);
    }
    seq.map(|seq| Applied::Seq(seq as u64))
        .ok_or_else(|| Error::Unavailable("postgres: an append returned no sequence number".into()))
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

/// One op, with its marker, in one statement (atomic on its own: no
/// BEGIN/COMMIT unless the caller wraps several).
async fn apply_op(connection: &mut PgConnection, op: &Op<ColdWrite>) -> Result<Applied> {
    let ns = &op.namespace;
    match &op.write {
        ColdWrite::Record(write) => write_record(connection, op.id, ns, write).await,
        ColdWrite::Transaction(writes) => {
            apply_records(connection, op.id, ns, writes)
                .await
                .map(|outcomes| {
                    Applied::Versions(
                        outcomes
                            .into_iter()
                            .zip(writes)
                            .map(|(outcome, write)| match write {
                                RecordWrite::Put { .. } => outcome,
                                RecordWrite::Delete { .. } => 0,
                            })
                            .collect(),
                    )
                })
        }
        ColdWrite::AppendHistory { stream, body } => {
            append_history(connection, op.id, ns, stream, body).await
        }
        ColdWrite::RestoreRecord {
            collection,
            key,
            version,
            body,
            expected_version,
        } => {
            let restore = RestoredRecord {
                collection,
                key,
                version: *version,
                body,
                expected_version: *expected_version,
            };
            restore_record(connection, op.id, ns, &restore).await
        }
        ColdWrite::RestoreHistory { stream, seq, body } => {
            restore_history(connection, op.id, ns, stream, *seq, body).await
        }
    }
}

/// A [`ColdWrite::RestoreRecord`]'s fields.
struct RestoredRecord<'a> {
    collection: &'a str,
    key: &'a str,
    version: u64,
    body: &'a str,
    expected_version: u64,
}

/// Sets a record to exactly its restored version and body, with the op's
/// marker, if it is at the expected version (0: absent).
async fn restore_record(
    connection: &mut PgConnection,
    op: OpId,
    ns: &Namespace,
    restore: &RestoredRecord<'_>,
) -> Result<Applied> {
    // $1 namespace, $2 collection, $3 key, $4 body, $5 op id, $6 version,
    // $7 expected version.
    let sql = if restore.expected_version == 0 {
        "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
         w AS (
             INSERT INTO records (namespace, collection, key, version, body)
             SELECT $1, $2, $3, $6, $4 WHERE NOT EXISTS (SELECT 1 FROM earlier) AND $7::BIGINT = 0
             ON CONFLICT (namespace, collection, key) DO NOTHING
             RETURNING version
         ),
         mark AS (INSERT INTO applied_ops (op_id, result) SELECT $5, 'v' || version FROM w)
         SELECT (SELECT result FROM earlier), (SELECT version FROM w)"
    } else {
        "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
         w AS (
             UPDATE records SET version = $6, body = $4, updated_at = now()
             WHERE namespace = $1 AND collection = $2 AND key = $3 AND version = $7
               AND NOT EXISTS (SELECT 1 FROM earlier)
             RETURNING version
         ),
         mark AS (INSERT INTO applied_ops (op_id, result) SELECT $5, 'v' || version FROM w)
         SELECT (SELECT result FROM earlier), (SELECT version FROM w)"
    };
    let (marker, done): (Option<String>, Option<i64>) = sqlx::query_as(sql)
        .bind(ns.as_str())
        .bind(restore.collection.as_bytes())
        .bind(restore.key.as_bytes())
        .bind(restore.body)
        .bind(&op.to_bytes()[..])
        .bind(restore.version as i64)
        .bind(restore.expected_version as i64)
        .fetch_one(&mut *connection)
        .await
        .map_err(convert)?;
    if let Some(earlier) = earlier(marker)? {
        return Ok(earlier);
    }
    if let Some(version) = done {
        return Ok(Applied::Version(version as u64));
    }
    let current = current_version(connection, ns, restore.collection, restore.key).await?;
    Err(Error::Conflict {
        expected: restore.expected_version,
        current,
    })
}

/// Sets entry `seq` of a stream (adding or replacing it) and raises the
/// stream's head to `seq` if it is lower, with the op's marker; answers
/// the head.
async fn restore_history(
    connection: &mut PgConnection,
    op: OpId,
    ns: &Namespace,
    stream: &str,
    seq: u64,
    body: &str,
) -> Result<Applied> {
    let (marker, stored): (Option<String>, Option<i64>) = sqlx::query_as(
        "WITH earlier AS (SELECT result FROM applied_ops WHERE op_id = $5),
         head AS (
             INSERT INTO history_heads (namespace, stream, last_seq)
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM earlier)
             ON CONFLICT (namespace, stream)
             DO UPDATE SET last_seq = GREATEST(history_heads.last_seq, EXCLUDED.last_seq)
             RETURNING last_seq
         ),
         entry AS (
             INSERT INTO history (namespace, stream, seq, body) SELECT $1, $2, $3, $4 FROM head
             ON CONFLICT (namespace, stream, seq) DO UPDATE SET body = EXCLUDED.body
             RETURNING seq
         ),
         mark AS (
             INSERT INTO applied_ops (op_id, result)
             SELECT $5, 'q' || last_seq FROM head WHERE EXISTS (SELECT 1 FROM entry)
         )
         SELECT (SELECT result FROM earlier), (SELECT last_seq FROM head)",
    )
    .bind(ns.as_str())
    .bind(stream.as_bytes())
    .bind(seq as i64)
    .bind(body)
    .bind(&op.to_bytes()[..])
    .fetch_one(&mut *connection)
    .await
    .map_err(convert)?;
    if let Some(earlier) = earlier(marker)? {
        return Ok(earlier);
    }
    stored
        .map(|seq| Applied::Seq(seq as u64))
        .ok_or_else(|| Error::Unavailable("postgres: a restored entry returned no seq".into()))
}

#[async_trait]
impl ColdStore for PostgresStore {
    async fn apply(&self, op: &Op<ColdWrite>) -> Result<Applied> {
        let mut connection = self.pool.acquire().await.map_err(convert)?;
        // A concurrent duplicate of the same op loses on applied_ops' key and
        // rolls back whole; once more, it finds the winner's row.
        for attempt in 0..2 {
            let result = apply_op(&mut connection, op).await;
            match result {
                Err(Error::Unavailable(reason))
                    if attempt == 0 && reason.contains(DUPLICATE_OP) =>
                {
                    continue;
                }
                result => return result,
            }
        }
        Err(Error::Unavailable(
            "postgres: an op kept colliding with itself".into(),
        ))
    }

    async fn apply_batch(&self, ops: &[&Op<ColdWrite>]) -> Result<Vec<Applied>> {
        let mut transaction = self.pool.begin().await.map_err(convert)?;
        let mut applied = Vec::with_capacity(ops.len());
        for op in ops {
            // Any failure (a conflict, a refused body, or one that aborted
            // the transaction) rolls all back, as dropping it does: the
            // caller finds out which op it was by applying them one by one.
            applied.push(apply_op(&mut transaction, op).await?);
        }
        transaction.commit().await.map_err(convert)?;
        Ok(applied)
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

    async fn export(&self, ns: &Namespace, sink: ItemSink<'_>) -> Result<ExportView> {
        use futures_util::TryStreamExt;
        let mut transaction = self.pool.begin().await.map_err(convert)?;
        // One snapshot for both tables; an export may take longer than
        // any one statement is allowed to.
        for setting in [
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            "SET LOCAL statement_timeout = 0",
        ] {
            sqlx::query(setting)
                .execute(&mut *transaction)
                .await
                .map_err(convert)?;
        }
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .map_err(|_| Error::Unavailable("postgres: a stored name is not UTF-8".into()))
        };
        {
            let mut rows = sqlx::query(
                "SELECT collection, key, version, body FROM records
                 WHERE namespace = $1 ORDER BY collection, key",
            )
            .bind(ns.as_str())
            .fetch(&mut *transaction);
            while let Some(row) = rows.try_next().await.map_err(convert)? {
                sink(Item::Record {
                    collection: text(row.try_get("collection").map_err(convert)?)?,
                    key: text(row.try_get("key").map_err(convert)?)?,
                    version: row.try_get::<i64, _>("version").map_err(convert)? as u64,
                    body: row.try_get("body").map_err(convert)?,
                })?;
            }
        }
        {
            let mut rows = sqlx::query(
                "SELECT stream, seq, body FROM history WHERE namespace = $1 ORDER BY stream, seq",
            )
            .bind(ns.as_str())
            .fetch(&mut *transaction);
            while let Some(row) = rows.try_next().await.map_err(convert)? {
                sink(Item::History {
                    stream: text(row.try_get("stream").map_err(convert)?)?,
                    seq: row.try_get::<i64, _>("seq").map_err(convert)? as u64,
                    body: row.try_get("body").map_err(convert)?,
                })?;
            }
        }
        transaction.commit().await.map_err(convert)?;
        Ok(ExportView::Snapshot(
            "one PostgreSQL transaction, REPEATABLE READ and READ ONLY",
        ))
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
