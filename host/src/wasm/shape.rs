//! What a component is made of, read from its bytes before wasmtime
//! compiles it: the contract it was built for, what it imports and exports,
//! and the linear memories and tables its core modules ask for. Loading
//! uses it to refuse a component with a clear reason (built for another
//! contract, asking for more memory than an instance may have) before any
//! compiling; `hoard plugin check` prints it.

use std::fmt;

/// The package of the plugin contract, as an export names it.
const GAME_EXPORT: &str = "hoard:plugin/game@";

/// A component's outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The component's size in bytes.
    pub bytes: usize,
    /// The contract version the component was built for (`0.2.0`), read
    /// from its `hoard:plugin/game@<version>` export; `None` if it has none.
    pub contract: Option<String>,
    /// The outermost component's imports, by name, in order.
    pub imports: Vec<String>,
    /// The outermost component's exports, by name, in order.
    pub exports: Vec<String>,
    /// Each linear memory its core modules define (imported ones are
    /// another module's, counted there; a module instantiated twice is
    /// counted once).
    pub memories: Vec<Memory>,
    /// Each table its core modules define.
    pub tables: Vec<Table>,
}

/// A linear memory a core module defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Its size when instantiated.
    pub initial_bytes: u64,
    /// The most it may grow to, if it says.
    pub maximum_bytes: Option<u64>,
}

/// A table a core module defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// Its size when instantiated.
    pub initial_elements: u64,
    /// The most it may grow to, if it says.
    pub maximum_elements: Option<u64>,
}

impl Shape {
    /// Reads `bytes`; an error says why they are not a component.
    pub fn read(bytes: &[u8]) -> Result<Shape, String> {
        use wasmparser::{Encoding, Parser, Payload};
        if !bytes.starts_with(b"\0asm") {
            return Err("it does not start with WebAssembly's magic bytes (\\0asm)".into());
        }
        let mut shape = Shape {
            bytes: bytes.len(),
            contract: None,
            imports: Vec::new(),
            exports: Vec::new(),
            memories: Vec::new(),
            tables: Vec::new(),
        };
        // What each enclosing component or module is: the outermost is
        // first. Imports and exports count only at the outermost level.
        let mut nesting: Vec<Encoding> = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| e.message().to_owned())?;
            let outermost = nesting.len() == 1;
            match payload {
                Payload::Version { encoding, .. } => {
                    if nesting.is_empty() && encoding == Encoding::Module {
                        return Err("it is a core WebAssembly module; a plugin is a component \
                             (build for the wasm32-wasip2 target, or wrap the module with \
                             `wasm-tools component new`)"
                            .into());
                    }
                    nesting.push(encoding);
                }
                Payload::End(_) => {
                    nesting.pop();
                }
                Payload::ComponentImportSection(reader) if outermost => {
                    for import in reader {
                        let import = import.map_err(|e| e.message().to_owned())?;
                        shape.imports.push(import.name.name.to_owned());
                    }
                }
                Payload::ComponentExportSection(reader) if outermost => {
                    for export in reader {
                        let export = export.map_err(|e| e.message().to_owned())?;
                        let name = export.name.name;
                        if let Some(version) = name.strip_prefix(GAME_EXPORT) {
                            shape.contract = Some(version.to_owned());
                        }
                        shape.exports.push(name.to_owned());
                    }
                }
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        let memory = memory.map_err(|e| e.message().to_owned())?;
                        let page_bytes = 1u64 << memory.page_size_log2();
                        shape.memories.push(Memory {
                            initial_bytes: memory.initial.saturating_mul(page_bytes),
                            maximum_bytes: memory.maximum.map(|m| m.saturating_mul(page_bytes)),
                        });
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table.map_err(|e| e.message().to_owned())?;
                        shape.tables.push(Table {
                            initial_elements: table.ty.initial,
                            maximum_elements: table.ty.maximum,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(shape)
    }

    /// Whether the component was built for a contract this host speaks:
    /// the same `0.x` (in 0.x versions the minor number breaks).
    pub fn speaks(&self, host_contract: &str) -> bool {
        self.contract
            .as_deref()
            .is_none_or(|version| same_series(version, host_contract))
    }

    /// Linear memory the memories its modules define ask for at start,
    /// in all.
    pub fn initial_memory_bytes(&self) -> u64 {
        self.memories
            .iter()
            .fold(0, |sum, m| sum.saturating_add(m.initial_bytes))
    }

    /// The largest start any one memory asks for: the limit
    /// (`wasm.memory_bytes_max`) holds for each memory.
    pub fn largest_initial_memory_bytes(&self) -> u64 {
        self.memories
            .iter()
            .map(|m| m.initial_bytes)
            .max()
            .unwrap_or(0)
    }
}

/// Whether two semver versions are compatible: same major, and for `0.x`
/// the same minor.
fn same_series(a: &str, b: &str) -> bool {
    let series = |v: &str| {
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or("");
        let minor = parts.next().unwrap_or("");
        if major == "0" {
            format!("0.{minor}")
        } else {
            major.to_owned()
        }
    };
    series(a) == series(b)
}

/// Bytes as a person reads them: `64 MiB`, `1.1 MiB`, `812 KiB`.
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: f64 = 1024.0;
        let bytes = self.0 as f64;
        if bytes < KIB {
            write!(f, "{} B", self.0)
        } else if bytes < KIB * KIB {
            write!(f, "{:.0} KiB", bytes / KIB)
        } else {
            let mib = bytes / (KIB * KIB);
            if mib.fract() == 0.0 {
                write!(f, "{mib:.0} MiB")
            } else {
                write!(f, "{mib:.1} MiB")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract series follows semver's 0.x rule: 0.2.0 and 0.2.3 go
    /// together, 0.1 and 0.3 do not; with no game export there is nothing
    /// to compare (the world check refuses it).
    #[test]
    fn contract_series() {
        let shape = |contract: Option<&str>| Shape {
            bytes: 0,
            contract: contract.map(str::to_owned),
            imports: vec![],
            exports: vec![],
            memories: vec![],
            tables: vec![],
        };
        assert!(shape(Some("0.2.0")).speaks("0.2.0"));
        assert!(shape(Some("0.2.3")).speaks("0.2.0"));
        assert!(!shape(Some("0.1.0")).speaks("0.2.0"));
        assert!(!shape(Some("0.3.0")).speaks("0.2.0"));
        assert!(!shape(Some("1.0.0")).speaks("0.2.0"));
        assert!(shape(None).speaks("0.2.0"));
    }

    /// Sizes print in the unit a person would write.
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(Size(512).to_string(), "512 B");
        assert_eq!(Size(3 * 1024).to_string(), "3 KiB");
        assert_eq!(Size(64 * 1024 * 1024).to_string(), "64 MiB");
        assert_eq!(Size(17 * 65536).to_string(), "1.1 MiB");
    }

    /// A core module is told apart from a component, and garbage is not
    /// either.
    #[test]
    fn modules_and_garbage_are_not_components() {
        let module = b"\0asm\x01\0\0\0";
        assert!(
            Shape::read(module)
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(Shape::read(b"hello").is_err());
    }
}
