//! JSON-field queries over cold records: the one definition of what a
//! condition matches. Backends that cannot push a query down (sled) evaluate
//! it here; the others translate it and must agree with it.

use super::{Error, Result};
use serde_json::Value;
use std::cmp::Ordering;

/// How a condition compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The field at `path` (dot-separated) compared with `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub path: Vec<String>,
    pub compare: Compare,
    pub value: Value,
}

impl Condition {
    /// Parses a condition as a guest sends it: a dotted path and a JSON value.
    pub fn parse(path: &str, compare: Compare, value: &str) -> Result<Self> {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(Error::invalid(
                "path",
                "must be dot-separated non-empty field names",
            ));
        }
        let value = serde_json::from_str(value)
            .map_err(|e| Error::invalid("value", format!("not valid JSON: {e}")))?;
        Ok(Condition {
            path: path.split('.').map(str::to_owned).collect(),
            compare,
            value,
        })
    }

    /// Whether `document` satisfies the condition. Numbers compare as numbers
    /// and strings by bytes; `eq`/`ne` also work on booleans, null, arrays
    /// and objects. A missing field, or one of another type, never matches
    /// (not even `ne`).
    pub fn matches(&self, document: &Value) -> bool {
        let Some(field) = self.path.iter().try_fold(document, |v, name| v.get(name)) else {
            return false;
        };
        let ordering = match (field, &self.value) {
            (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => None,
            },
            (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => {
                // Booleans, null, arrays, objects: equality only.
                return match self.compare {
                    Compare::Eq => a == b,
                    Compare::Ne => a != b,
                    _ => false,
                };
            }
            _ => None,
        };
        let Some(ordering) = ordering else {
            return false;
        };
        match self.compare {
            Compare::Eq => ordering == Ordering::Equal,
            Compare::Ne => ordering != Ordering::Equal,
            Compare::Lt => ordering == Ordering::Less,
            Compare::Le => ordering != Ordering::Greater,
            Compare::Gt => ordering == Ordering::Greater,
            Compare::Ge => ordering != Ordering::Less,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_compare_by_type_and_skip_missing_fields() {
        let doc = json!({"name": "ali", "stats": {"wins": 3, "pro": true}});
        let case = |path, compare, value| {
            Condition::parse(path, compare, value)
                .unwrap()
                .matches(&doc)
        };
        assert!(case("stats.wins", Compare::Ge, "3"));
        assert!(case("stats.wins", Compare::Lt, "3.5"));
        assert!(!case("stats.wins", Compare::Gt, "3"));
        assert!(case("name", Compare::Eq, "\"ali\""));
        assert!(case("name", Compare::Lt, "\"bob\""));
        assert!(
            !case("name", Compare::Eq, "3"),
            "string vs number never matches"
        );
        assert!(case("stats.pro", Compare::Eq, "true"));
        assert!(!case("stats.pro", Compare::Lt, "true"));
        assert!(
            !case("stats.losses", Compare::Ne, "1"),
            "missing field never matches"
        );
        assert!(Condition::parse("a..b", Compare::Eq, "1").is_err());
        assert!(Condition::parse("a", Compare::Eq, "{").is_err());
    }
}
