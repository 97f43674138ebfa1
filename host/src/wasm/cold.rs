//! Host side of `hoard:plugin/cold`: checks sizes and JSON, builds ops, calls
//! the store.

use super::InstanceData;
use super::bindings::hoard::plugin::cold::{
    Compare as WitCompare, Condition as WitCondition, HistoryEntry, Host, Page, Record, Write,
};
use crate::storage::{Applied, ColdWrite, Compare, Condition, Error, Op, RecordWrite};

type Result<T> = std::result::Result<T, Error>;

impl InstanceData {
    async fn cold_write(&mut self, write: ColdWrite) -> Result<Applied> {
        self.storage.limits.check_cold(&write)?;
        let op = Op {
            id: self.next_op_id(),
            namespace: self.namespace.clone(),
            write,
        };
        self.storage.cold.apply(&op).await
    }
}

fn unexpected(applied: Applied) -> Error {
    debug_assert!(false, "unexpected result {applied:?}");
    Error::Unavailable(format!("backend returned {applied:?}"))
}

fn record(r: crate::storage::Record) -> Record {
    Record {
        key: r.key,
        version: r.version,
        body: r.body,
    }
}

fn record_write(write: Write) -> RecordWrite {
    match write {
        Write::Put(p) => RecordWrite::Put {
            collection: p.collection,
            key: p.key,
            body: p.body,
            expected_version: p.expected_version,
        },
        Write::Delete(d) => RecordWrite::Delete {
            collection: d.collection,
            key: d.key,
            expected_version: d.expected_version,
        },
    }
}

fn condition(c: WitCondition) -> Result<Condition> {
    let compare = match c.op {
        WitCompare::Eq => Compare::Eq,
        WitCompare::Ne => Compare::Ne,
        WitCompare::Lt => Compare::Lt,
        WitCompare::Le => Compare::Le,
        WitCompare::Gt => Compare::Gt,
        WitCompare::Ge => Compare::Ge,
    };
    Condition::parse(&c.path, compare, &c.value)
}

impl Host for InstanceData {
    async fn get(&mut self, collection: String, key: String) -> Result<Option<Record>> {
        let limits = &self.storage.limits;
        limits.check_key("collection-bytes", &collection)?;
        limits.check_key("key-bytes", &key)?;
        Ok(self
            .storage
            .cold
            .get(&self.namespace, &collection, &key)
            .await?
            .map(record))
    }

    async fn put(
        &mut self,
        collection: String,
        key: String,
        body: String,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let write = RecordWrite::Put {
            collection,
            key,
            body,
            expected_version,
        };
        match self.cold_write(ColdWrite::Record(write)).await? {
            Applied::Version(version) => Ok(version),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(
        &mut self,
        collection: String,
        key: String,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let write = RecordWrite::Delete {
            collection,
            key,
            expected_version,
        };
        match self.cold_write(ColdWrite::Record(write)).await? {
            Applied::Existed(existed) => Ok(existed),
            other => Err(unexpected(other)),
        }
    }

    async fn list(
        &mut self,
        collection: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<Page> {
        let limits = &self.storage.limits;
        limits.check_key("collection-bytes", &collection)?;
        limits.check_key("key-bytes", &prefix)?;
        limits.check_rows(limit)?;
        if let Some(cursor) = &cursor {
            // A cursor encodes one key.
            limits.check_key("cursor-bytes", &cursor[..cursor.len() / 2])?;
        }
        let page = self
            .storage
            .cold
            .list(
                &self.namespace,
                &collection,
                &prefix,
                cursor.as_deref(),
                limit,
            )
            .await?;
        Ok(Page {
            records: page.records.into_iter().map(record).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn query(
        &mut self,
        collection: String,
        conditions: Vec<WitCondition>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let limits = &self.storage.limits;
        limits.check_key("collection-bytes", &collection)?;
        limits.check_rows(limit)?;
        if conditions.len() > 16 {
            return Err(Error::LimitExceeded {
                what: "conditions",
                max: 16,
                actual: conditions.len() as u64,
            });
        }
        let conditions = conditions
            .into_iter()
            .map(condition)
            .collect::<Result<Vec<_>>>()?;
        let found = self
            .storage
            .cold
            .query(&self.namespace, &collection, &conditions, limit)
            .await?;
        Ok(found.into_iter().map(record).collect())
    }

    async fn transact(&mut self, writes: Vec<Write>) -> Result<Vec<u64>> {
        let writes = writes.into_iter().map(record_write).collect();
        match self.cold_write(ColdWrite::Transaction(writes)).await? {
            Applied::Versions(versions) => Ok(versions),
            other => Err(unexpected(other)),
        }
    }

    async fn append_history(&mut self, stream: String, body: String) -> Result<u64> {
        match self
            .cold_write(ColdWrite::AppendHistory { stream, body })
            .await?
        {
            Applied::Seq(seq) => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    async fn read_history(
        &mut self,
        stream: String,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        self.storage.limits.check_key("stream-bytes", &stream)?;
        self.storage.limits.check_rows(limit)?;
        let entries = self
            .storage
            .cold
            .read_history(&self.namespace, &stream, after, limit)
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| HistoryEntry {
                seq: e.seq,
                body: e.body,
            })
            .collect())
    }
}
