//! Encryption of values at rest (project secrets, user tokens) with the keys of `config.yml`'s
//! `encryption` section, and the token hashes that tokens are looked up by.
//!
//! Stored values use the original's self-describing format, so a database moves between the two
//! servers: `enc:<key type>:<key name>:<data>`. For an `aes` key, `data` is the standard base64
//! (padded) of a random 12-byte nonce followed by the AES-256-GCM ciphertext and its 16-byte tag;
//! for `identity` (no encryption) it is the plain text and the name is `noname`.
//!
//! The first configured key encrypts; every key decrypts (rotation): the key named in the value
//! is tried first, then the other keys of its type (as the original, which ignores the name).
//! `identity` values always decrypt, whatever is configured.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, aead};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The prefix of every stored value.
const PREFIX: &str = "enc:";
const AES: &str = "aes";
const IDENTITY: &str = "identity";
/// The name the original gives the identity key.
const IDENTITY_NAME: &str = "noname";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encryption or decryption failed, or the keys in `config.yml` are invalid.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `encryption` in `config.yml` is invalid; `at` is the property (`encryption.keys[0]`).
    #[error("{at}: {message}")]
    Config {
        /// Where: `encryption.keys[<i>]` and the key's name when it has one.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A stored value is not `enc:<key type>:<key name>:<data>`, or its data is not what its
    /// key type stores.
    #[error("a stored value is not an encrypted value (enc:<key type>:<key name>:<data>)")]
    Malformed,
    /// A stored value names a key type this server does not know.
    #[error("a stored value was encrypted with a key of unknown type `{0}`")]
    UnknownType(String),
    /// No configured key decrypts a stored value.
    #[error(
        "no key in `encryption.keys` decrypts a value encrypted with the {key_type} key `{name}`"
    )]
    NoKey {
        /// The value's key type.
        key_type: String,
        /// The value's key name.
        name: String,
    },
    /// The operating system's random source failed (a nonce could not be drawn).
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
}

/// One key from `encryption.keys`.
enum Key {
    Aes {
        name: String,
        cipher: Box<Aes256Gcm>,
    },
    Identity,
}

impl Key {
    fn key_type(&self) -> &'static str {
        match self {
            Key::Aes { .. } => AES,
            Key::Identity => IDENTITY,
        }
    }

    fn name(&self) -> &str {
        match self {
            Key::Aes { name, .. } => name,
            Key::Identity => IDENTITY_NAME,
        }
    }
}

/// The configured keys; the first encrypts. Cheap to clone. `Debug` names the keys, never
/// their secrets.
#[derive(Clone)]
pub struct Keys(Arc<[Key]>);

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|k| format!("{}:{}", k.key_type(), k.name())),
            )
            .finish()
    }
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::identity()
    }
}

fn config_error(at: impl Into<String>, message: impl Into<String>) -> CryptoError {
    CryptoError::Config {
        at: at.into(),
        message: message.into(),
    }
}

/// A map's fields, refusing any not in `allowed` (the original forbids extra fields).
fn fields<'a>(
    value: &'a Value,
    at: &str,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, CryptoError> {
    let map = value
        .as_object()
        .ok_or_else(|| config_error(at, "expected a mapping"))?;
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(config_error(at, format!("unknown field `{extra}`")));
    }
    Ok(map)
}

fn aes_key(map: &serde_json::Map<String, Value>, at: &str) -> Result<Key, CryptoError> {
    let name = match map.get("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(config_error(format!("{at}.name"), "expected a string")),
        None => return Err(config_error(format!("{at}.name"), "field required")),
    };
    let at = format!("{at} (key `{name}`)");
    if name.is_empty() || !name.chars().all(char::is_alphanumeric) {
        return Err(config_error(
            format!("{at}.name"),
            "Key name must be alphanumeric",
        ));
    }
    let secret = match map.get("secret") {
        Some(Value::String(secret)) => secret,
        Some(_) => return Err(config_error(format!("{at}.secret"), "expected a string")),
        None => return Err(config_error(format!("{at}.secret"), "field required")),
    };
    let bytes = STANDARD.decode(secret.trim()).map_err(|_| {
        config_error(
            format!("{at}.secret"),
            "Failed to decode secret from base64",
        )
    })?;
    let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
        config_error(
            format!("{at}.secret"),
            format!(
                "AES key must be 32 bytes. Got {} bytes (generate one with `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            ),
        )
    })?;
    Ok(Key::Aes {
        name: name.clone(),
        cipher: Box::new(cipher),
    })
}

impl Keys {
    /// No encryption: values are stored as `enc:identity:noname:<text>`.
    pub fn identity() -> Keys {
        Keys(Arc::from([Key::Identity]))
    }

    /// The keys of `config.yml`'s `encryption` section (`{keys: [...]}`; `null` or no keys is
    /// no encryption), each checked as the original checks them.
    pub fn from_config(encryption: &Value) -> Result<Keys, CryptoError> {
        if encryption.is_null() {
            return Ok(Keys::identity());
        }
        let section = fields(encryption, "encryption", &["keys"])?;
        let list = match section.get("keys") {
            Some(Value::Array(list)) => list,
            Some(_) => return Err(config_error("encryption.keys", "expected a list")),
            None => return Err(config_error("encryption.keys", "field required")),
        };
        let mut keys = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let at = format!("encryption.keys[{i}]");
            let key_type = entry.get("type").and_then(Value::as_str);
            let key = match key_type {
                Some(AES) => aes_key(fields(entry, &at, &["type", "name", "secret"])?, &at)?,
                Some(IDENTITY) => {
                    fields(entry, &at, &["type"])?;
                    Key::Identity
                }
                _ => {
                    return Err(config_error(
                        format!("{at}.type"),
                        "expected `aes` or `identity`",
                    ));
                }
            };
            keys.push(key);
        }
        if keys.is_empty() {
            return Ok(Keys::identity());
        }
        Ok(Keys(Arc::from(keys)))
    }

    fn first(&self) -> &Key {
        // Never empty: both constructors put at least one key in.
        &self.0[0]
    }

    /// What encrypts new values, for messages: `aes key `key1`` or `identity (no encryption)`.
    pub fn describe(&self) -> String {
        match self.first() {
            Key::Aes { name, .. } => format!("aes key `{name}`"),
            Key::Identity => "identity (no encryption)".to_string(),
        }
    }

    /// Whether new values are stored encrypted.
    pub fn encrypts(&self) -> bool {
        matches!(self.first(), Key::Aes { .. })
    }

    /// A value in its stored form, encrypted with the first key.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError> {
        match self.first() {
            Key::Identity => Ok(format!("{PREFIX}{IDENTITY}:{IDENTITY_NAME}:{plaintext}")),
            Key::Aes { name, cipher } => {
                let nonce = aead::Nonce::<Aes256Gcm>::try_generate()
                    .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
                let sealed = cipher
                    .encrypt(&nonce, plaintext.as_bytes())
                    .map_err(|_| CryptoError::Encrypt("the value is too long".into()))?;
                let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
                data.extend_from_slice(&nonce);
                data.extend_from_slice(&sealed);
                Ok(format!("{PREFIX}{AES}:{name}:{}", STANDARD.encode(data)))
            }
        }
    }

    /// The plain text of a stored value.
    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let (key_type, name, data) = split(stored)?;
        match key_type {
            IDENTITY => Ok(data.to_string()),
            AES => {
                let bytes = STANDARD.decode(data).map_err(|_| CryptoError::Malformed)?;
                if bytes.len() < NONCE_LEN + TAG_LEN {
                    return Err(CryptoError::Malformed);
                }
                let (nonce, sealed) = bytes.split_at(NONCE_LEN);
                let nonce = aead::Nonce::<Aes256Gcm>::try_from(nonce)
                    .map_err(|_| CryptoError::Malformed)?;
                let named = self.0.iter().filter(|k| k.name() == name);
                let others = self.0.iter().filter(|k| k.name() != name);
                for key in named.chain(others) {
                    if let Key::Aes { cipher, .. } = key
                        && let Ok(plain) = cipher.decrypt(&nonce, sealed)
                    {
                        return String::from_utf8(plain).map_err(|_| CryptoError::Malformed);
                    }
                }
                Err(CryptoError::NoKey {
                    key_type: key_type.to_string(),
                    name: name.to_string(),
                })
            }
            other => Err(CryptoError::UnknownType(other.to_string())),
        }
    }

    /// Whether a stored value is already under the first key (same type and name), so that a
    /// start with a new first key knows what to re-encrypt without decrypting anything.
    pub fn is_current(&self, stored: &str) -> bool {
        split(stored).is_ok_and(|(key_type, name, _)| {
            key_type == self.first().key_type() && name == self.first().name()
        })
    }
}

/// `enc:<type>:<name>:<data>` → its parts.
fn split(stored: &str) -> Result<(&str, &str, &str), CryptoError> {
    let rest = stored.strip_prefix(PREFIX).ok_or(CryptoError::Malformed)?;
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(key_type), Some(name), Some(data)) => Ok((key_type, name, data)),
        _ => Err(CryptoError::Malformed),
    }
}

/// The key a stored value was encrypted with, for messages (`aes key `key1``), never its data.
pub fn key_of(stored: &str) -> String {
    match split(stored) {
        Ok((key_type, name, _)) => format!("{key_type} key `{name}`"),
        Err(_) => "no known key".to_string(),
    }
}

/// The hex SHA-256 of a token: what tokens are looked up by (the `token_hash` column, the
/// token caches and the proxy's table), as the original's `token_hash`.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{CryptoError, Keys, key_of, token_hash};

    // The secrets of the original's tests and documentation.
    const SECRET1: &str = "cR2r1JmkPyL6edBQeHKz6ZBjCfS2oWk87Gc2G3wHVoA=";
    const SECRET2: &str = "4nr0Hr4bck/xURGbpdDwnDwBP1iGnTtYZT752h/kWno=";

    fn keys(list: serde_json::Value) -> Keys {
        Keys::from_config(&json!({ "keys": list })).expect("valid keys")
    }

    fn config_error(list: serde_json::Value) -> String {
        match Keys::from_config(&json!({ "keys": list })) {
            Err(e @ CryptoError::Config { .. }) => e.to_string(),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn aes_round_trip_with_a_fresh_nonce_each_time() {
        let k = keys(json!([{"type": "aes", "name": "key1", "secret": SECRET1}]));
        let a = k.encrypt("This is a test string.").expect("encrypts");
        let b = k.encrypt("This is a test string.").expect("encrypts");
        assert!(a.starts_with("enc:aes:key1:"), "{a}");
        assert_ne!(a, b, "a nonce is never reused");
        assert!(!a.contains("test string"));
        assert_eq!(k.decrypt(&a).expect("decrypts"), "This is a test string.");
        assert_eq!(k.decrypt(&b).expect("decrypts"), "This is a test string.");
        // Nonce (12) + text (22) + tag (16) bytes, base64.
        let data = a.trim_start_matches("enc:aes:key1:");
        assert_eq!(data.len(), (12 + 22 + 16usize).div_ceil(3) * 4);
        assert!(k.encrypts());
        assert!(k.is_current(&a));
        assert_eq!(
            k.encrypt("").and_then(|e| k.decrypt(&e)).as_deref().ok(),
            Some("")
        );
    }

    #[test]
    fn identity_stores_the_text_as_the_original_does() {
        let k = Keys::identity();
        assert_eq!(
            k.encrypt("some text").expect("stores"),
            "enc:identity:noname:some text"
        );
        assert_eq!(
            k.decrypt("enc:identity:noname:a:b:c").expect("reads"),
            "a:b:c"
        );
        assert!(!k.encrypts());
        assert_eq!(k.describe(), "identity (no encryption)");
        assert_eq!(
            Keys::from_config(&json!(null)).expect("none").describe(),
            k.describe()
        );
        assert_eq!(keys(json!([])).describe(), k.describe());
    }

    #[test]
    fn the_first_key_encrypts_and_every_key_decrypts() {
        let old = keys(json!([{"type": "aes", "name": "key1", "secret": SECRET1}]));
        let stored = old.encrypt("v").expect("encrypts");
        let rotated = keys(json!([
            {"type": "aes", "name": "key2", "secret": SECRET2},
            {"type": "aes", "name": "key1", "secret": SECRET1},
        ]));
        assert_eq!(rotated.decrypt(&stored).expect("the old key decrypts"), "v");
        assert!(!rotated.is_current(&stored));
        let new = rotated.encrypt("v").expect("encrypts");
        assert!(new.starts_with("enc:aes:key2:"), "{new}");
        assert!(rotated.is_current(&new));
        assert_eq!(rotated.describe(), "aes key `key2`");
        // Plain values always decrypt (identity is implied, as in the original).
        assert_eq!(
            rotated.decrypt("enc:identity:noname:x").expect("plain"),
            "x"
        );
        // A renamed key still decrypts (the name is tried first, not required).
        let renamed = keys(json!([{"type": "aes", "name": "other", "secret": SECRET1}]));
        assert_eq!(renamed.decrypt(&stored).expect("same secret"), "v");
        // Without the old key: the error names the key, not the data.
        let without = keys(json!([{"type": "aes", "name": "key2", "secret": SECRET2}]));
        let e = without.decrypt(&stored).expect_err("no key");
        assert_eq!(
            e.to_string(),
            "no key in `encryption.keys` decrypts a value encrypted with the aes key `key1`"
        );
        assert!(matches!(
            Keys::identity().decrypt(&stored),
            Err(CryptoError::NoKey { .. })
        ));
        assert_eq!(key_of(&stored), "aes key `key1`");
        // Identity first: new values are plain, old ones still decrypt.
        let back = keys(json!([
            {"type": "identity"},
            {"type": "aes", "name": "key1", "secret": SECRET1},
        ]));
        assert_eq!(back.decrypt(&stored).expect("decrypts"), "v");
        assert_eq!(back.encrypt("v").expect("plain"), "enc:identity:noname:v");
    }

    #[test]
    fn tampered_and_malformed_values_are_refused() {
        let k = keys(json!([{"type": "aes", "name": "key1", "secret": SECRET1}]));
        let stored = k.encrypt("value").expect("encrypts");
        let data = stored.trim_start_matches("enc:aes:key1:");
        let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
            .expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!(
            "enc:aes:key1:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes)
        );
        assert!(matches!(
            k.decrypt(&tampered),
            Err(CryptoError::NoKey { .. })
        ));
        for bad in [
            "plain",
            "enc:aes",
            "enc:aes:key1:!!!",
            "enc:aes:key1:AAAA",
            "",
        ] {
            assert!(
                matches!(k.decrypt(bad), Err(CryptoError::Malformed)),
                "{bad}"
            );
            // Whether a value is current is read from its prefix alone.
            assert_eq!(k.is_current(bad), bad.starts_with("enc:aes:key1:"), "{bad}");
        }
        assert!(matches!(
            k.decrypt("enc:vault:k:data"),
            Err(CryptoError::UnknownType(t)) if t == "vault"
        ));
    }

    #[test]
    fn invalid_keys_are_named_and_their_secrets_never_shown() {
        assert_eq!(
            config_error(json!([{"type": "aes", "name": "key1", "secret": "c2hvcnQ="}])),
            "encryption.keys[0] (key `key1`).secret: AES key must be 32 bytes. Got 5 bytes \
             (generate one with `head -c 32 /dev/urandom | base64`)"
        );
        assert_eq!(
            config_error(json!([
                {"type": "identity"},
                {"type": "aes", "name": "key2", "secret": "not base64!"},
            ])),
            "encryption.keys[1] (key `key2`).secret: Failed to decode secret from base64"
        );
        assert_eq!(
            config_error(json!([{"type": "aes", "name": "key-1", "secret": SECRET1}])),
            "encryption.keys[0] (key `key-1`).name: Key name must be alphanumeric"
        );
        assert_eq!(
            config_error(json!([{"type": "aes", "secret": SECRET1}])),
            "encryption.keys[0].name: field required"
        );
        assert_eq!(
            config_error(json!([{"type": "aes", "name": "k"}])),
            "encryption.keys[0] (key `k`).secret: field required"
        );
        assert_eq!(
            config_error(json!([{"type": "rsa", "name": "k"}])),
            "encryption.keys[0].type: expected `aes` or `identity`"
        );
        assert_eq!(
            config_error(json!([{"type": "identity", "name": "k"}])),
            "encryption.keys[0]: unknown field `name`"
        );
        assert_eq!(
            config_error(json!(["aes"])),
            "encryption.keys[0].type: expected `aes` or `identity`"
        );
        let e = Keys::from_config(&json!({"key": []})).expect_err("keys is required");
        assert_eq!(e.to_string(), "encryption: unknown field `key`");
        let e = Keys::from_config(&json!({})).expect_err("keys is required");
        assert_eq!(e.to_string(), "encryption.keys: field required");
        let e = Keys::from_config(&json!({"keys": "aes"})).expect_err("a list");
        assert_eq!(e.to_string(), "encryption.keys: expected a list");
        let e = Keys::from_config(&json!([])).expect_err("a mapping");
        assert_eq!(e.to_string(), "encryption: expected a mapping");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let k = keys(json!([
            {"type": "aes", "name": "key1", "secret": SECRET1},
            {"type": "identity"},
        ]));
        let shown = format!("{k:?}");
        assert_eq!(shown, r#"["aes:key1", "identity:noname"]"#);
    }

    #[test]
    fn token_hashes_are_the_originals() {
        // hashlib.sha256(b"abc").hexdigest()
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
