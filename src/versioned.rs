//! A value as one process leaves it to another (the carry, a decoder's state, a handoff packet):
//! a format version byte, then the value in postcard (serde's compact binary format), and nothing
//! after. A reader refuses another version rather than misread it, so each format bumps its
//! version with any change to its types. Pure.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why bytes were not read as a value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refused {
    #[error("nothing")]
    Empty,
    #[error("format version {found}, not {expected}: its writer runs another build")]
    Version { found: u8, expected: u8 },
    #[error("unreadable: {0}")]
    Unreadable(postcard::Error),
    #[error("{0} bytes after the value")]
    Trailing(usize),
}

/// `value` after `version`, in a buffer of `capacity` to start with (its length, if known, spares
/// the copies of a growing one).
pub fn encode<T: Serialize + ?Sized>(version: u8, value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity.max(1));
    out.push(version);
    postcard::to_extend(value, out).expect("a Vec takes any length")
}

/// The value [`encode`] wrote with `version`.
pub fn decode<'a, T: Deserialize<'a>>(version: u8, bytes: &'a [u8]) -> Result<T, Refused> {
    let (&found, rest) = bytes.split_first().ok_or(Refused::Empty)?;
    if found != version {
        return Err(Refused::Version {
            found,
            expected: version,
        });
    }
    match postcard::take_from_bytes(rest) {
        Ok((value, [])) => Ok(value),
        Ok((_, after)) => Err(Refused::Trailing(after.len())),
        Err(e) => Err(Refused::Unreadable(e)),
    }
}

/// Writes `bytes` as postcard's byte string (its length, then the bytes) in one copy, where serde
/// would write a `[u8]` a byte at a time; postcard reads both the same. For
/// `#[serde(serialize_with = "crate::versioned::byte_string")]`.
pub fn byte_string<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Value<'a> {
        n: u64,
        #[serde(serialize_with = "byte_string")]
        bytes: &'a [u8],
    }

    #[test]
    fn a_value_comes_back_only_from_its_own_version_whole() {
        let value = Value { n: 300, bytes: b"abc" };
        let bytes = encode(7, &value, 0);
        assert_eq!(bytes[0], 7);
        assert_eq!(decode::<Value>(7, &bytes), Ok(Value { n: 300, bytes: b"abc" }));
        assert_eq!(
            decode::<Value>(8, &bytes),
            Err(Refused::Version { found: 7, expected: 8 })
        );
        assert_eq!(decode::<Value>(7, &[]), Err(Refused::Empty));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<Value>(7, &longer), Err(Refused::Trailing(1)));
        for cut in 1..bytes.len() {
            assert!(
                matches!(decode::<Value>(7, &bytes[..cut]), Err(Refused::Unreadable(_))),
                "cut at {cut}"
            );
        }
    }
}
