//! Content digests, held in 32 bytes when they are the usual `sha256:<64 hex>`.
//!
//! A snapshot of 100k tags holds about 100k layer digests and 100k manifest digests. As
//! strings each costs a 71-byte heap allocation (96 bytes with the allocator's overhead)
//! plus a pointer; as a `Digest` it is 40 bytes inline. Anything that is not exactly
//! `sha256:` followed by 64 lower-case hex digits (another algorithm, upper case) is kept
//! verbatim, so every digest reads back byte for byte as the registry wrote it.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digest {
    /// `sha256:` and the 32 bytes its 64 hex digits spell.
    Sha256([u8; 32]),
    /// Any other digest, as given.
    Other(Box<str>),
}

const PREFIX: &str = "sha256:";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Value of each lower-case hex digit; 0xff for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl Digest {
    pub fn parse(text: &str) -> Digest {
        Digest::sha256(text).unwrap_or_else(|| Digest::Other(text.into()))
    }

    fn sha256(text: &str) -> Option<Digest> {
        let hex = text.strip_prefix(PREFIX)?.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        // Branch-free: a snapshot file holds 200k digests to decode at start-up.
        let mut bytes = [0u8; 32];
        let mut invalid = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (high, low) = (
                HEX_VALUE[usize::from(pair[0])],
                HEX_VALUE[usize::from(pair[1])],
            );
            invalid |= high | low;
            *byte = high << 4 | low;
        }
        (invalid & 0xf0 == 0).then_some(Digest::Sha256(bytes))
    }
}

/// The text of a sha256 digest, without allocating.
fn sha256_text(bytes: &[u8; 32]) -> [u8; 71] {
    let mut text = [0u8; 71];
    text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
    for (pair, b) in text[PREFIX.len()..].chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    text
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Other(text) => f.write_str(text),
            Digest::Sha256(bytes) => {
                let text = sha256_text(bytes);
                // ASCII only: the prefix and hex digits.
                f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
            }
        }
    }
}

impl From<&str> for Digest {
    fn from(text: &str) -> Digest {
        Digest::parse(text)
    }
}

impl From<String> for Digest {
    fn from(text: String) -> Digest {
        Digest::sha256(&text).unwrap_or_else(|| Digest::Other(text.into_boxed_str()))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Digest, E> {
                Ok(Digest::parse(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:644001494e24f952a998a59c52d9dffb586f7ea7137a7ffad5878d8314b9a745";

    #[test]
    fn sha256_is_stored_as_bytes_and_reads_back_exactly() {
        let d = Digest::parse(A);
        assert!(matches!(d, Digest::Sha256(b) if b[0] == 0x64 && b[31] == 0x45));
        assert_eq!(d.to_string(), A);
        assert_eq!(format!("{d:?}"), format!("{A:?}"));
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{A}\""));
        let back: Digest = serde_json::from_str(&format!("\"{A}\"")).unwrap();
        assert_eq!(back, d);
        assert_eq!(std::mem::size_of::<Digest>(), 40);
        assert_eq!(std::mem::size_of::<Option<Digest>>(), 40);
    }

    #[test]
    fn anything_else_is_kept_verbatim() {
        let upper = A.to_uppercase().replace("SHA256", "sha256");
        for text in [
            "sha512:abcd",
            &upper,
            &A[..A.len() - 1],
            &format!("{A}0"),
            "sha256:",
            "",
            "644001494e24f952a998a59c52d9dffb586f7ea7137a7ffad5878d8314b9a745",
            "sha256:g44001494e24f952a998a59c52d9dffb586f7ea7137a7ffad5878d8314b9a745",
        ] {
            let d = Digest::parse(text);
            assert!(matches!(d, Digest::Other(_)), "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_ne!(Digest::parse(A), Digest::parse(&upper));
    }
}
