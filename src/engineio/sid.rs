//! Session and socket identifiers: 20 URL-safe characters, `Copy`, cheap to hash.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An identifier as socket.io makes them: 15 random bytes in URL-safe base64 (20 characters).
///
/// Used for Engine.IO session ids and Socket.IO socket ids alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; Sid::LEN]);

impl Sid {
    /// Length of the textual form.
    pub const LEN: usize = 20;

    /// A fresh random id.
    pub fn random() -> Self {
        let raw: [u8; 15] = rand::random();
        let mut out = [0u8; Self::LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("15 bytes always encode to 20 characters");
        debug_assert_eq!(written, Self::LEN);
        Sid(out)
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        // Built only from base64 output or validated ASCII in `from_str`.
        std::str::from_utf8(&self.0).expect("a Sid is ASCII")
    }
}

/// The text given is not a 20-character URL-safe id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session id")]
pub struct InvalidSid;

impl FromStr for Sid {
    type Err = InvalidSid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != Self::LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(InvalidSid);
        }
        let mut out = [0u8; Self::LEN];
        out.copy_from_slice(bytes);
        Ok(Sid(out))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_20_url_safe_chars_and_parse_back() {
        let a = Sid::random();
        let b = Sid::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 20);
        assert_eq!(a.as_str().parse::<Sid>(), Ok(a));
    }

    #[test]
    fn rejects_wrong_length_and_characters() {
        assert_eq!("abc".parse::<Sid>(), Err(InvalidSid));
        assert_eq!("aaaaaaaaaaaaaaaaaaa/".parse::<Sid>(), Err(InvalidSid));
    }
}
