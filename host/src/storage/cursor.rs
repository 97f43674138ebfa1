//! List cursors, the same in every backend: the last key returned,
//! hex-encoded so a cursor is plain ASCII whatever bytes the key holds.

use super::{Error, Result};

pub(crate) fn encode(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode(cursor: &str) -> Result<Vec<u8>> {
    let invalid = || Error::invalid("cursor", "not a cursor returned by list");
    if !cursor.len().is_multiple_of(2) {
        return Err(invalid());
    }
    (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(invalid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let key = b"a\0\xffz";
        assert_eq!(super::decode(&super::encode(key)).unwrap(), key);
        assert!(super::decode("abc").is_err());
        assert!(super::decode("zz").is_err());
    }
}
