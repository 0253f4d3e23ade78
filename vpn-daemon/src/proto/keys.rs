//! Pre-shared and derived key blocks: the "OpenVPN Static key V1" file, `Key2`, key direction.
//!
//! The 256-byte block (sections 3.1 and 6.1) is two 128-byte [`KeySlot`]s,
//! each a 64-byte cipher field followed by a 64-byte hmac field:
//!
//! ```text
//!  0        64       128      192      256
//! +--------+--------+--------+--------+
//! | cipher | hmac   | cipher | hmac   |
//! +--------+--------+--------+--------+
//!   keys[0]           keys[1]
//! ```
//!
//! Which slot protects which direction is decided by [`KeyDirection`].

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::proto::error::KeyFileError;

/// Length of a full key block.
pub const KEY2_LEN: usize = 256;
/// Length of one slot (cipher + hmac field).
pub const SLOT_LEN: usize = 128;
/// Length of the cipher or the hmac field of a slot.
pub const FIELD_LEN: usize = 64;

const STATIC_KEY_LABEL: &str = "OpenVPN Static key V1";

/// One direction's key material: 64 bytes of cipher key, 64 of hmac key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeySlot {
    cipher: [u8; FIELD_LEN],
    hmac: [u8; FIELD_LEN],
}

impl KeySlot {
    /// Slot from its two fields.
    pub fn new(cipher: [u8; FIELD_LEN], hmac: [u8; FIELD_LEN]) -> Self {
        Self { cipher, hmac }
    }

    /// Slot from shorter prefixes (as logged by OpenVPN); the rest stays zero.
    ///
    /// Returns `None` if a prefix is longer than 64 bytes.
    pub fn from_prefixes(cipher: &[u8], hmac: &[u8]) -> Option<Self> {
        let mut s = Self {
            cipher: [0; FIELD_LEN],
            hmac: [0; FIELD_LEN],
        };
        s.cipher.get_mut(..cipher.len())?.copy_from_slice(cipher);
        s.hmac.get_mut(..hmac.len())?.copy_from_slice(hmac);
        Some(s)
    }

    /// The 64-byte cipher field; a cipher uses its first `key_len` bytes.
    pub fn cipher(&self) -> &[u8; FIELD_LEN] {
        &self.cipher
    }

    /// The 64-byte hmac field; HMAC uses its first `digest_len` bytes, AEAD
    /// ciphers take their implicit IV from its first 8 bytes (section 6.4).
    pub fn hmac(&self) -> &[u8; FIELD_LEN] {
        &self.hmac
    }
}

impl core::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeySlot(..)")
    }
}

/// A 256-byte key block: static key file contents or derived data-channel keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key2 {
    bytes: [u8; KEY2_LEN],
}

impl core::fmt::Debug for Key2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key2(..)")
    }
}

impl Key2 {
    /// Block from its 256 bytes, in file order.
    pub fn from_bytes(bytes: [u8; KEY2_LEN]) -> Self {
        Self { bytes }
    }

    /// Block from a slice that must be exactly 256 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyFileError> {
        let arr: [u8; KEY2_LEN] = bytes.try_into().map_err(|_| KeyFileError::WrongLength {
            got: bytes.len(),
            expected: KEY2_LEN,
        })?;
        Ok(Self { bytes: arr })
    }

    /// Block made of two slots (`keys[0]`, `keys[1]`).
    pub fn from_slots(k0: &KeySlot, k1: &KeySlot) -> Self {
        let mut bytes = [0u8; KEY2_LEN];
        bytes[..64].copy_from_slice(&k0.cipher);
        bytes[64..128].copy_from_slice(&k0.hmac);
        bytes[128..192].copy_from_slice(&k1.cipher);
        bytes[192..].copy_from_slice(&k1.hmac);
        Self { bytes }
    }

    /// Fresh random block (`openvpn --genkey secret`).
    pub fn generate() -> Result<Self, KeyFileError> {
        let mut bytes = [0u8; KEY2_LEN];
        openssl::rand::rand_bytes(&mut bytes)?;
        Ok(Self { bytes })
    }

    /// The raw 256 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY2_LEN] {
        &self.bytes
    }

    /// Slot `i` (0 or 1); any other index is clamped to 1.
    pub fn slot(&self, i: usize) -> KeySlot {
        let off = if i == 0 { 0 } else { SLOT_LEN };
        let mut cipher = [0u8; FIELD_LEN];
        let mut hmac = [0u8; FIELD_LEN];
        cipher.copy_from_slice(&self.bytes[off..off + FIELD_LEN]);
        hmac.copy_from_slice(&self.bytes[off + FIELD_LEN..off + SLOT_LEN]);
        KeySlot { cipher, hmac }
    }

    /// Byte-wise XOR with another block (dynamic tls-crypt, section 3.6).
    pub fn xor(&self, other: &Key2) -> Key2 {
        let mut bytes = self.bytes;
        for (b, o) in bytes.iter_mut().zip(other.bytes.iter()) {
            *b ^= o;
        }
        Key2 { bytes }
    }

    /// Parse an "OpenVPN Static key V1" file (section 3.1).
    ///
    /// Lines outside BEGIN/END are ignored; inside, hex digits are read in
    /// pairs across line breaks, whitespace is skipped, anything else is an
    /// error naming the line. Exactly 256 bytes are required.
    pub fn from_static_key_file(text: &str) -> Result<Self, KeyFileError> {
        let begin = format!("-----BEGIN {STATIC_KEY_LABEL}-----");
        let end = format!("-----END {STATIC_KEY_LABEL}-----");
        let mut lines = text.lines().enumerate();
        if !lines.by_ref().any(|(_, l)| l.trim() == begin) {
            return Err(KeyFileError::MissingBegin {
                label: STATIC_KEY_LABEL,
            });
        }
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(KEY2_LEN));
        let mut high: Option<u8> = None;
        let mut ended = false;
        for (idx, line) in lines {
            if line.trim() == end {
                ended = true;
                break;
            }
            for ch in line.chars() {
                if ch.is_whitespace() {
                    continue;
                }
                let Some(v) = ch.to_digit(16) else {
                    return Err(KeyFileError::InvalidCharacter { line: idx + 1, ch });
                };
                // to_digit(16) yields 0..=15, so the narrowing cannot lose bits.
                let v = v as u8;
                match high.take() {
                    None => high = Some(v),
                    Some(h) => out.push((h << 4) | v),
                }
            }
        }
        if !ended {
            return Err(KeyFileError::MissingEnd {
                label: STATIC_KEY_LABEL,
            });
        }
        if high.is_some() {
            return Err(KeyFileError::OddHexDigits);
        }
        Self::from_slice(&out)
    }

    /// Render as an "OpenVPN Static key V1" file, 16 lines of 32 hex digits.
    pub fn to_static_key_file(&self) -> String {
        let mut s = String::from("#\n# 2048 bit OpenVPN static key\n#\n");
        s.push_str(&format!("-----BEGIN {STATIC_KEY_LABEL}-----\n"));
        for chunk in self.bytes.chunks(16) {
            for b in chunk {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\n');
        }
        s.push_str(&format!("-----END {STATIC_KEY_LABEL}-----\n"));
        s
    }
}

/// Which slot each direction uses (section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum KeyDirection {
    /// No direction given: both directions use `keys[0]`.
    #[default]
    Bidirectional,
    /// `key-direction 0` (server convention): send `keys[0]`, receive `keys[1]`.
    Normal,
    /// `key-direction 1` (client convention): send `keys[1]`, receive `keys[0]`.
    Inverse,
}

impl KeyDirection {
    /// From the config value (`0`, `1`, or absent).
    pub fn from_config(v: Option<u8>) -> Option<Self> {
        match v {
            None => Some(Self::Bidirectional),
            Some(0) => Some(Self::Normal),
            Some(1) => Some(Self::Inverse),
            Some(_) => None,
        }
    }

    /// Index of the slot outgoing packets are protected with.
    pub const fn out_slot(self) -> usize {
        match self {
            Self::Bidirectional | Self::Normal => 0,
            Self::Inverse => 1,
        }
    }

    /// Index of the slot incoming packets are checked with.
    pub const fn in_slot(self) -> usize {
        match self {
            Self::Bidirectional | Self::Inverse => 0,
            Self::Normal => 1,
        }
    }
}

/// Which end of the tunnel we are; fixes the implicit directions of
/// tls-crypt (3.5) and of the data-channel key block (6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// TLS client (`--client` / `--tls-client`).
    Client,
    /// TLS server (`--server` / `--tls-server`).
    Server,
}

impl Role {
    /// tls-crypt direction: server NORMAL, client INVERSE.
    pub const fn tls_crypt_direction(self) -> KeyDirection {
        match self {
            Role::Server => KeyDirection::Normal,
            Role::Client => KeyDirection::Inverse,
        }
    }

    /// Data-channel direction: `keys[0]` carries client→server traffic, so
    /// the client sends with slot 0 (NORMAL) and the server with slot 1.
    pub const fn data_direction(self) -> KeyDirection {
        match self {
            Role::Client => KeyDirection::Normal,
            Role::Server => KeyDirection::Inverse,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_12_2: &str = "\
#
# 2048 bit OpenVPN static key
#
-----BEGIN OpenVPN Static key V1-----
37268ea8f95d7f71f9fb8fc03770c460
daf714a483d815c013ce0a537efc18f2
8f4f172669d9e6a413bac6741d8ea054
00f49b7fd6326470f23798c606bf53d4
de63ebc64ec59d57ce5d04d5b62e68b5
3ca6e5354351097fa370446c4d269f18
7bb6ae54af2dc70ff7317fe2f8754b82
82aad4202f9fa42c8640245d883e2c54
a0c1c489a036cf3a8964d8d289c1583b
9447c262b1da5fd167a5d27bd5ac5143
17bc2343a31a2efc38dd920d910375f5
1c2e27f3afd36c49269da079f7ce466e
bb0f9ad13e9bbb4665974e6bc24b513c
5700393bf4a3e7f967e2f384069ac8a8
e78b18b15604993fd16515cce9c0f3e4
2b4126b999005ade802797b0eeb8b9e6
-----END OpenVPN Static key V1-----
";

    #[test]
    fn parses_static_key_file_into_slots() {
        let k = Key2::from_static_key_file(FILE_12_2).unwrap();
        assert_eq!(k.as_bytes()[0], 0x37);
        assert_eq!(k.as_bytes()[255], 0xe6);
        let s1 = k.slot(1);
        assert_eq!(&s1.hmac()[..4], &[0xbb, 0x0f, 0x9a, 0xd1]);
    }

    #[test]
    fn static_key_file_round_trips() {
        let k = Key2::from_static_key_file(FILE_12_2).unwrap();
        let again = Key2::from_static_key_file(&k.to_static_key_file()).unwrap();
        assert_eq!(k.as_bytes(), again.as_bytes());
    }

    #[test]
    fn accepts_hex_split_across_lines_and_spaces() {
        let body: String = FILE_12_2.replace("c460\n", "c4\n 60\n");
        assert!(Key2::from_static_key_file(&body).is_ok());
    }

    #[test]
    fn rejects_invalid_character_with_line_number() {
        let body = FILE_12_2.replacen("37268ea8", "3726xea8", 1);
        match Key2::from_static_key_file(&body) {
            Err(KeyFileError::InvalidCharacter { line: 5, ch: 'x' }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_short_key() {
        let body = FILE_12_2.replacen("37268ea8f95d7f71f9fb8fc03770c460\n", "", 1);
        assert!(matches!(
            Key2::from_static_key_file(&body),
            Err(KeyFileError::WrongLength {
                got: 240,
                expected: 256
            })
        ));
    }

    #[test]
    fn rejects_missing_markers_and_odd_digits() {
        assert!(matches!(
            Key2::from_static_key_file("nothing"),
            Err(KeyFileError::MissingBegin { .. })
        ));
        let no_end = FILE_12_2.replace("-----END OpenVPN Static key V1-----", "");
        assert!(matches!(
            Key2::from_static_key_file(&no_end),
            Err(KeyFileError::MissingEnd { .. })
        ));
        let odd = FILE_12_2.replacen("37268ea8", "37268ea", 1);
        assert!(matches!(
            Key2::from_static_key_file(&odd),
            Err(KeyFileError::OddHexDigits)
        ));
    }

    #[test]
    fn key_direction_slots_follow_section_3_2() {
        assert_eq!(
            (
                KeyDirection::Bidirectional.out_slot(),
                KeyDirection::Bidirectional.in_slot()
            ),
            (0, 0)
        );
        assert_eq!(
            (
                KeyDirection::Normal.out_slot(),
                KeyDirection::Normal.in_slot()
            ),
            (0, 1)
        );
        assert_eq!(
            (
                KeyDirection::Inverse.out_slot(),
                KeyDirection::Inverse.in_slot()
            ),
            (1, 0)
        );
        assert_eq!(KeyDirection::from_config(Some(2)), None);
    }
}
