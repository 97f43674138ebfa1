//! The dump format: JSON lines, readable with any JSON tool, checked chunk
//! by chunk.
//!
//! ```text
//! {"hoard_dump":1,"hoard":"0.1.0","contract":"0.2.0","dump_id":"…","created_ms":…,"namespaces":["hokm"]}
//! {"ns":"hokm","value":{"key":"k","value":{"text":"7"},"ttl_ms":5000}}
//! {"ns":"hokm","record":{"collection":"stats","key":"ana","version":3,"body":"{…}"}}
//! …                                   up to 1000 item lines (or 8 MiB)
//! {"chunk":1,"items":1000,"sha256":"…"}
//! …
//! {"end":{"items":1234,"chunks":2,"views":[…]}}
//! ```
//!
//! The header names the format, the hoard and contract versions that wrote
//! it, the dump's id (import op ids derive from it) and every namespace in
//! it. Each item line is one [`Item`] of one namespace; bytes are `text`
//! when they are UTF-8, else `hex`. A chunk line closes the item lines
//! since the one before (at most 1000, or 8 MiB) with their count and the
//! SHA-256 of their bytes, newlines included; the first chunk's covers the
//! header line too. The end line gives the totals and how consistent
//! each namespace's reads were. A dump without its end line was cut short.
//!
//! A reader hands items out only a whole checked chunk at a time, so an
//! import never applies an item of a chunk it could not check.

use crate::storage::{ExportView, Item, Namespace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};

/// The format this hoard writes and reads.
pub const FORMAT: u32 = 1;

/// Item lines per chunk, at most.
pub const CHUNK_ITEMS: usize = 1000;

/// A writer closes a chunk once its item lines reach this many bytes,
/// whatever their number.
pub const CHUNK_BYTES: usize = 8 << 20;

/// The largest value or record body the configuration may allow
/// (`storage.limits.value_bytes_max`), and the longest key or name
/// (`key_bytes_max`): an item within both fits in a line.
pub const VALUE_BYTES_MAX: u64 = 8 << 20;
pub const KEY_BYTES_MAX: u64 = 64 << 10;

/// The longest line a reader takes, and a writer writes: a value at
/// [`VALUE_BYTES_MAX`], a body of it with every character escaped
/// (`\u0000`: six bytes each) and a few names fit.
pub const LINE_BYTES_MAX: usize = 6 * VALUE_BYTES_MAX as usize + (1 << 20);

/// The most bytes of item lines a reader holds before their chunk line
/// (what a writer puts in a chunk, and one line more): a reader's memory
/// is bounded by it, whatever the dump says.
pub const CHUNK_BYTES_MAX: usize = CHUNK_BYTES + LINE_BYTES_MAX;

/// The dump's first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub hoard_dump: u32,
    /// The hoard that wrote it.
    pub hoard: String,
    /// The plugin contract (`hoard:plugin@…`) of the hoard that wrote it.
    pub contract: String,
    /// 32 hex digits, random per dump.
    pub dump_id: String,
    pub created_ms: u64,
    pub namespaces: Vec<String>,
    /// For one account's own records (`POST /v1/accounts/me/export`): the
    /// account's id on the host that wrote the dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// How consistent one namespace's reads of one capability were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub namespace: String,
    pub capability: String,
    pub snapshot: bool,
    pub how: String,
}

impl View {
    pub fn new(namespace: &Namespace, capability: &str, view: &ExportView) -> View {
        let (snapshot, how) = match view {
            ExportView::Snapshot(how) => (true, how),
            ExportView::Live(how) => (false, how),
        };
        View {
            namespace: namespace.to_string(),
            capability: capability.to_owned(),
            snapshot,
            how: (*how).to_owned(),
        }
    }
}

/// The dump's last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub items: u64,
    pub chunks: u64,
    pub views: Vec<View>,
}

#[derive(Serialize, Deserialize)]
struct EndLine {
    end: End,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkLine {
    chunk: u64,
    items: u64,
    sha256: String,
}

/// Bytes as text when they are UTF-8, else as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Bytes {
    Text(String),
    Hex(String),
}

impl Bytes {
    fn of(bytes: &[u8]) -> Bytes {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text.to_owned()),
            Err(_) => Bytes::Hex(hex(bytes)),
        }
    }

    fn into_bytes(self) -> Result<Vec<u8>, String> {
        match self {
            Bytes::Text(text) => Ok(text.into_bytes()),
            Bytes::Hex(hex) => unhex(&hex).ok_or_else(|| format!("{hex:?} is not hex")),
        }
    }
}

/// An item as a line holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum LineItem {
    Value {
        key: String,
        value: Bytes,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    HashField {
        key: String,
        field: String,
        value: Bytes,
    },
    Score {
        board: String,
        member: String,
        score: f64,
    },
    Record {
        collection: String,
        key: String,
        version: u64,
        body: String,
    },
    History {
        stream: String,
        seq: u64,
        body: String,
    },
}

#[derive(Serialize, Deserialize)]
struct ItemLine {
    ns: String,
    #[serde(flatten)]
    item: LineItem,
}

/// An item as a dump's line holds it, without its namespace: how the admin
/// API's storage browser shows items too.
pub fn item_json(item: &Item) -> serde_json::Value {
    serde_json::to_value(LineItem::of(item)).expect("an item is JSON")
}

impl LineItem {
    fn of(item: &Item) -> LineItem {
        match item.clone() {
            Item::Value { key, value, ttl_ms } => LineItem::Value {
                key,
                value: Bytes::of(&value),
                ttl_ms,
            },
            Item::HashField { key, field, value } => LineItem::HashField {
                key,
                field,
                value: Bytes::of(&value),
            },
            Item::Score {
                board,
                member,
                score,
            } => LineItem::Score {
                board,
                member,
                score,
            },
            Item::Record {
                collection,
                key,
                version,
                body,
            } => LineItem::Record {
                collection,
                key,
                version,
                body,
            },
            Item::History { stream, seq, body } => LineItem::History { stream, seq, body },
        }
    }

    fn into_item(self) -> Result<Item, String> {
        Ok(match self {
            LineItem::Value { key, value, ttl_ms } => Item::Value {
                key,
                value: value.into_bytes()?,
                ttl_ms,
            },
            LineItem::HashField { key, field, value } => Item::HashField {
                key,
                field,
                value: value.into_bytes()?,
            },
            LineItem::Score {
                board,
                member,
                score,
            } => Item::Score {
                board,
                member,
                score,
            },
            LineItem::Record {
                collection,
                key,
                version,
                body,
            } => Item::Record {
                collection,
                key,
                version,
                body,
            },
            LineItem::History { stream, seq, body } => Item::History { stream, seq, body },
        })
    }
}

/// Why a dump cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read the dump: {0}")]
    Io(#[from] std::io::Error),
    #[error("the dump is empty")]
    Empty,
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    #[error(
        "the dump was written in format {found} (by hoard {hoard}); this hoard reads format {FORMAT}: import it with that hoard or a newer one"
    )]
    NewerFormat { found: u32, hoard: String },
    #[error(
        "the dump was written for plugin contract {found} (by hoard {hoard}); this hoard serves contract {ours} and cannot be sure it reads its data right: import it with a hoard that serves {found}"
    )]
    NewerContract {
        found: String,
        ours: String,
        hoard: String,
    },
    #[error(
        "chunk {chunk} (ending at line {line}) does not match its checksum: the dump is damaged; the chunks before it were sound"
    )]
    Checksum { chunk: u64, line: u64 },
    #[error(
        "the dump was cut short: it ends at line {line} after {chunks} whole chunk(s), without its end line"
    )]
    Truncated { line: u64, chunks: u64 },
}

/// Writes a dump line by line.
pub struct DumpWriter<W: Write> {
    out: W,
    chunk: Sha256,
    in_chunk: u64,
    chunk_bytes: usize,
    chunks: u64,
    items: u64,
    line: Vec<u8>,
}

impl<W: Write> DumpWriter<W> {
    pub fn start(mut out: W, header: &Header) -> std::io::Result<Self> {
        let mut line = serde_json::to_vec(header)?;
        line.push(b'\n');
        out.write_all(&line)?;
        // The first chunk's checksum covers the header too.
        let mut chunk = Sha256::new();
        chunk.update(&line);
        Ok(DumpWriter {
            out,
            chunk,
            in_chunk: 0,
            chunk_bytes: 0,
            chunks: 0,
            items: 0,
            line: Vec::with_capacity(256),
        })
    }

    pub fn item(&mut self, ns: &Namespace, item: &Item) -> std::io::Result<()> {
        self.line.clear();
        let line = ItemLine {
            ns: ns.to_string(),
            item: LineItem::of(item),
        };
        serde_json::to_writer(&mut self.line, &line)?;
        self.line.push(b'\n');
        if self.line.len() > LINE_BYTES_MAX {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "an item of {ns} takes {} bytes as a line, over the dump's limit of {LINE_BYTES_MAX}",
                    self.line.len()
                ),
            ));
        }
        self.out.write_all(&self.line)?;
        self.chunk.update(&self.line);
        self.in_chunk += 1;
        self.chunk_bytes += self.line.len();
        self.items += 1;
        if self.in_chunk as usize == CHUNK_ITEMS || self.chunk_bytes >= CHUNK_BYTES {
            self.close_chunk()?;
        }
        Ok(())
    }

    fn close_chunk(&mut self) -> std::io::Result<()> {
        self.chunks += 1;
        let digest = std::mem::take(&mut self.chunk).finalize();
        let line = ChunkLine {
            chunk: self.chunks,
            items: self.in_chunk,
            sha256: hex(&digest),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.in_chunk = 0;
        self.chunk_bytes = 0;
        Ok(())
    }

    /// Closes the last chunk and writes the end line; returns the totals
    /// and the writer.
    pub fn finish(mut self, views: Vec<View>) -> std::io::Result<(End, W)> {
        if self.in_chunk > 0 {
            self.close_chunk()?;
        }
        let end = End {
            items: self.items,
            chunks: self.chunks,
            views,
        };
        serde_json::to_writer(&mut self.out, &EndLine { end: end.clone() })?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok((end, self.out))
    }
}

/// One item read from a dump, with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// 0 for the first item of the dump.
    pub index: u64,
    pub namespace: String,
    pub item: Item,
}

/// Reads a dump, a checked chunk at a time.
pub struct DumpReader<R: BufRead> {
    input: R,
    header: Header,
    /// The header line, which the first chunk's checksum covers.
    header_line: Vec<u8>,
    line: u64,
    chunks: u64,
    items: u64,
    end: Option<End>,
    buffer: Vec<u8>,
}

impl<R: BufRead> DumpReader<R> {
    /// Reads and checks the header: `contract` is this hoard's.
    pub fn open(mut input: R, contract: &str) -> Result<Self, DumpError> {
        let mut buffer = Vec::new();
        if read_line(&mut input, &mut buffer, 1)? == 0 {
            return Err(DumpError::Empty);
        }
        let malformed = |reason: String| DumpError::Malformed { line: 1, reason };
        let value: serde_json::Value = serde_json::from_slice(&buffer).map_err(|e| {
            malformed(format!(
                "not a hoard dump: the first line is not JSON ({e})"
            ))
        })?;
        let found = value
            .get("hoard_dump")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                malformed("not a hoard dump: the first line has no \"hoard_dump\"".into())
            })?;
        let hoard = value
            .get("hoard")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned();
        if found == 0 {
            return Err(malformed("not a hoard dump: format 0".into()));
        }
        if found > u64::from(FORMAT) {
            return Err(DumpError::NewerFormat {
                found: u32::try_from(found).unwrap_or(u32::MAX),
                hoard,
            });
        }
        let header: Header = serde_json::from_value(value)
            .map_err(|e| malformed(format!("the header does not fit format {FORMAT}: {e}")))?;
        if newer(&header.contract, contract)? {
            return Err(DumpError::NewerContract {
                found: header.contract,
                ours: contract.to_owned(),
                hoard,
            });
        }
        if header.dump_id.len() != 32 || unhex(&header.dump_id).is_none() {
            return Err(malformed("the dump id is not 32 hex digits".into()));
        }
        Ok(DumpReader {
            input,
            header,
            header_line: buffer.clone(),
            line: 1,
            chunks: 0,
            items: 0,
            end: None,
            buffer,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The end line, once [`DumpReader::next_chunk`] has answered `None`.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// The next whole chunk, checked; `None` after the end line.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Read>>, DumpError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let mut hash = Sha256::new();
        if self.chunks == 0 {
            hash.update(&self.header_line);
        }
        let mut items = Vec::new();
        let mut held = 0usize;
        loop {
            self.line += 1;
            let line = self.line;
            let read = read_line(&mut self.input, &mut self.buffer, line)?;
            if read == 0 || self.buffer.last() != Some(&b'\n') {
                return Err(DumpError::Truncated {
                    line: line - u64::from(read == 0),
                    chunks: self.chunks,
                });
            }
            let malformed = |reason: String| DumpError::Malformed { line, reason };
            if self.buffer.starts_with(b"{\"ns\":") {
                let parsed: ItemLine = serde_json::from_slice(&self.buffer)
                    .map_err(|e| malformed(format!("not an item: {e}")))?;
                if !self.header.namespaces.contains(&parsed.ns) {
                    return Err(malformed(format!(
                        "namespace {:?} is not among the header's",
                        parsed.ns
                    )));
                }
                hash.update(&self.buffer);
                held += self.buffer.len();
                if held > CHUNK_BYTES_MAX {
                    return Err(malformed(format!(
                        "more than {CHUNK_BYTES_MAX} bytes of items without a chunk line"
                    )));
                }
                items.push(Read {
                    index: self.items + items.len() as u64,
                    namespace: parsed.ns,
                    item: parsed.item.into_item().map_err(malformed)?,
                });
                if items.len() > CHUNK_ITEMS {
                    return Err(malformed(format!(
                        "more than {CHUNK_ITEMS} items without a chunk line"
                    )));
                }
                continue;
            }
            let value: serde_json::Value = serde_json::from_slice(&self.buffer)
                .map_err(|e| malformed(format!("not JSON: {e}")))?;
            if value.get("chunk").is_some() {
                let chunk: ChunkLine = serde_json::from_value(value)
                    .map_err(|e| malformed(format!("not a chunk line: {e}")))?;
                let expected = self.chunks + 1;
                if chunk.chunk != expected || chunk.items != items.len() as u64 {
                    return Err(malformed(format!(
                        "chunk line says chunk {} of {} items; this is chunk {expected} of {} items",
                        chunk.chunk,
                        chunk.items,
                        items.len()
                    )));
                }
                if hex(&hash.finalize()) != chunk.sha256 {
                    return Err(DumpError::Checksum {
                        chunk: expected,
                        line,
                    });
                }
                self.chunks = expected;
                self.items += items.len() as u64;
                return Ok(Some(items));
            }
            if value.get("end").is_some() {
                let end: EndLine = serde_json::from_value(value)
                    .map_err(|e| malformed(format!("not an end line: {e}")))?;
                if !items.is_empty() {
                    return Err(malformed(format!(
                        "{} item line(s) before the end line have no chunk line",
                        items.len()
                    )));
                }
                if (end.end.items, end.end.chunks) != (self.items, self.chunks) {
                    return Err(malformed(format!(
                        "the end line counts {} items in {} chunks; the dump holds {} in {}",
                        end.end.items, end.end.chunks, self.items, self.chunks
                    )));
                }
                // Nothing may follow the end line.
                if read_line(&mut self.input, &mut self.buffer, line + 1)? != 0 {
                    return Err(DumpError::Malformed {
                        line: line + 1,
                        reason: "a line after the end line".into(),
                    });
                }
                self.end = Some(end.end);
                return Ok(None);
            }
            return Err(malformed(
                "neither an item, a chunk line nor the end line".into(),
            ));
        }
    }
}

/// Reads one line into `buffer` (cleared first), at most
/// [`LINE_BYTES_MAX`]; returns how many bytes it read.
fn read_line(
    input: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    line: u64,
) -> Result<usize, DumpError> {
    buffer.clear();
    let read =
        std::io::Read::take(&mut *input, LINE_BYTES_MAX as u64 + 1).read_until(b'\n', buffer)?;
    if read > LINE_BYTES_MAX {
        return Err(DumpError::Malformed {
            line,
            reason: format!("longer than {LINE_BYTES_MAX} bytes"),
        });
    }
    Ok(read)
}

/// Whether contract `found` (`major.minor.patch`) is newer in major or
/// minor than `ours`: a patch never changes what data means.
fn newer(found: &str, ours: &str) -> Result<bool, DumpError> {
    let parse = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    };
    let found_version = parse(found).ok_or_else(|| DumpError::Malformed {
        line: 1,
        reason: format!("contract {found:?} is not a version"),
    })?;
    let ours = parse(ours).expect("the host's own contract is a version");
    Ok(found_version > ours)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            hoard_dump: FORMAT,
            hoard: "0.1.0".into(),
            contract: "0.2.0".into(),
            dump_id: "00112233445566778899aabbccddeeff".into(),
            created_ms: 1,
            namespaces: vec!["game".into()],
            account: None,
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| match i % 3 {
                0 => Item::Value {
                    key: format!("k{i}"),
                    value: vec![0xff, i as u8],
                    ttl_ms: Some(5),
                },
                1 => Item::Score {
                    board: "b".into(),
                    member: format!("m{i}"),
                    score: -0.1 * i as f64,
                },
                _ => Item::Record {
                    collection: "c".into(),
                    key: format!("r{i}"),
                    version: i as u64,
                    body: "{\"a\":\"\\n\"}".into(),
                },
            })
            .collect()
    }

    fn written(items: &[Item]) -> Vec<u8> {
        written_with(&header(), items)
    }

    fn written_with(header: &Header, items: &[Item]) -> Vec<u8> {
        let ns = Namespace::plugin("game").unwrap();
        let mut writer = DumpWriter::start(Vec::new(), header).unwrap();
        for item in items {
            writer.item(&ns, item).unwrap();
        }
        writer.finish(Vec::new()).unwrap().1
    }

    fn read_all(dump: &[u8]) -> Result<Vec<Item>, DumpError> {
        let mut reader = DumpReader::open(dump, "0.2.0")?;
        let mut all = Vec::new();
        while let Some(chunk) = reader.next_chunk()? {
            all.extend(chunk.into_iter().map(|read| read.item));
        }
        Ok(all)
    }

    #[test]
    fn items_round_trip_over_several_chunks() {
        let items = items(2 * CHUNK_ITEMS + 7);
        let dump = written(&items);
        let read = read_all(&dump).unwrap();
        assert_eq!(read.len(), items.len());
        for (read, item) in read.iter().zip(&items) {
            assert_eq!(read, item);
        }
        let empty = written(&[]);
        assert_eq!(read_all(&empty).unwrap(), Vec::<Item>::new());
    }

    #[test]
    fn a_cut_short_dump_is_truncated_wherever_it_is_cut() {
        let dump = written(&items(CHUNK_ITEMS + 3));
        let first_line = dump.iter().position(|b| *b == b'\n').unwrap() + 1;
        for cut in [first_line, first_line + 10, dump.len() / 2, dump.len() - 1] {
            match read_all(&dump[..cut]) {
                Err(DumpError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_changed_byte_fails_its_chunk_and_no_item_of_it_is_handed_out() {
        let mut dump = written(&items(CHUNK_ITEMS + 3));
        let text = String::from_utf8(dump.clone()).unwrap();
        // A digit in the second chunk's first item, still valid JSON.
        let at = text.find("\"m1000\"").unwrap() + 5;
        dump[at] = b'7';
        let mut reader = DumpReader::open(&dump[..], "0.2.0").unwrap();
        assert_eq!(reader.next_chunk().unwrap().unwrap().len(), CHUNK_ITEMS);
        match reader.next_chunk() {
            Err(DumpError::Checksum { chunk: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_chunk_covers_the_header() {
        let dump = String::from_utf8(written(&items(3))).unwrap();
        let other_id = dump.replacen("00112233", "99112233", 1);
        assert!(matches!(
            read_all(other_id.as_bytes()),
            Err(DumpError::Checksum { chunk: 1, .. })
        ));
        let format_zero = dump.replacen("\"hoard_dump\":1", "\"hoard_dump\":0", 1);
        assert!(matches!(
            read_all(format_zero.as_bytes()),
            Err(DumpError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn a_chunk_closes_at_its_bytes_and_a_reader_holds_no_more() {
        let big = Item::Record {
            collection: "c".into(),
            key: "k".into(),
            version: 1,
            body: format!("\"{}\"", "x".repeat(3 << 20)),
        };
        let dump = written(&[big.clone(), big.clone(), big.clone(), big]);
        // 12 MiB of items: two chunks, the first closed at 8 MiB.
        let text = String::from_utf8(dump.clone()).unwrap();
        assert!(
            text.contains("{\"chunk\":1,\"items\":3,"),
            "three items reach 8 MiB"
        );
        assert_eq!(read_all(&dump).unwrap().len(), 4);
        // A dump that never closes its chunks is refused past the bound.
        let unclosed: String = text
            .lines()
            .take(1)
            .chain(std::iter::repeat_n(
                text.lines().nth(1).unwrap(),
                CHUNK_BYTES_MAX / (3 << 20) + 2,
            ))
            .map(|line| format!("{line}\n"))
            .collect();
        match read_all(unclosed.as_bytes()) {
            Err(DumpError::Malformed { reason, .. }) => {
                assert!(reason.contains("without a chunk line"), "{reason}")
            }
            other => panic!("{:?}", other.map(|items| items.len())),
        }
    }

    #[test]
    fn newer_formats_and_contracts_and_strangers_are_refused() {
        let dump = String::from_utf8(written(&items(2))).unwrap();
        let newer_contract = dump.replacen("\"contract\":\"0.2.0\"", "\"contract\":\"0.3.0\"", 1);
        assert!(matches!(
            read_all(newer_contract.as_bytes()),
            Err(DumpError::NewerContract { .. })
        ));
        let patch = Header {
            contract: "0.2.9".into(),
            ..header()
        };
        assert!(read_all(&written_with(&patch, &items(2))).is_ok());
        let newer_format = dump.replacen("\"hoard_dump\":1", "\"hoard_dump\":2", 1);
        assert!(matches!(
            read_all(newer_format.as_bytes()),
            Err(DumpError::NewerFormat { found: 2, .. })
        ));
        assert!(matches!(read_all(b""), Err(DumpError::Empty)));
        assert!(matches!(
            read_all(b"hello\n"),
            Err(DumpError::Malformed { line: 1, .. })
        ));
        let stranger = dump.replacen("{\"ns\":\"game\"", "{\"ns\":\"other\"", 1);
        assert!(matches!(
            read_all(stranger.as_bytes()),
            Err(DumpError::Malformed { line: 2, .. })
        ));
        let trailing = format!("{dump}{{}}\n");
        assert!(matches!(
            read_all(trailing.as_bytes()),
            Err(DumpError::Malformed { .. })
        ));
    }
}
