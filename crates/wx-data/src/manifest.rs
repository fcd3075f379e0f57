//! Miner manifests (docs/data.md §2): parsing, hashing, sr25519 signatures, and the frozen manifest
//! stored in `weather_miner_responses.frozen_manifest`.
//!
//! * [`file_hash`]`(path, bytes)` = lowercase hex of sha256(utf8(path) ‖ 0x00 ‖ bytes);
//! * [`manifest_hash`]`(bytes)` = lowercase hex of sha256 of the exact `manifest.json` bytes;
//! * [`Manifest::parse`] reads `manifest.json` (≤ [`MAX_MANIFEST_BYTES`], extra keys kept);
//! * [`ss58_decode`] decodes an SS58 address (1- or 2-byte network prefix, blake2b-512
//!   `SS58PRE` checksum) to its 32-byte public key;
//! * [`verify_signature`] checks a 64-byte sr25519 signature (signing context `substrate`) over
//!   the manifest bytes, or over `<Bytes>` ‖ bytes ‖ `</Bytes>`;
//! * [`verify_manifest`] does all checks in order — size, hash against the miner's claim,
//!   parse, hash algorithm, signer against the hotkey we have, signature — and returns a
//!   [`FrozenManifest`], which keeps the exact manifest text and its hash and round-trips
//!   through JSON ([`FrozenManifest::to_db_json`], [`FrozenManifest::from_db_json`], which
//!   re-checks the hash).

use std::collections::BTreeMap;
use std::fmt;

use blake2::{Blake2b512, Digest as _};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;
use wx_model::ErrorKind;

/// Largest accepted `manifest.json`, in bytes (a 40-step store's manifest is about 36 KB).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Largest accepted `manifest.sig`, in bytes.
pub const MAX_SIGNATURE_FILE_BYTES: usize = 1024;
/// The only supported file hash algorithm.
pub const SHA256: &str = "sha256";
/// Substrate's sr25519 signing context.
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// `manifest.json` or `manifest.sig` is larger than allowed.
    #[error("{file} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Which file.
        file: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// sha256(manifest bytes) differs from the hash the miner claimed.
    #[error(
        "manifest hash mismatch: the miner claimed {claimed} but manifest.json hashes to {computed}; the store changed or the claim is wrong"
    )]
    WrongManifestHash {
        /// The claimed hash (sanitized, at most 64 characters).
        claimed: String,
        /// sha256 of the bytes received.
        computed: String,
    },
    /// Not a manifest: bad JSON, missing or mistyped keys, bad paths or hashes.
    #[error("malformed manifest.json: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// `chunk_hash_algorithm` is not `sha256`.
    #[error("manifest chunk_hash_algorithm {algorithm:?} is not supported (only \"sha256\")")]
    UnsupportedHashAlgorithm {
        /// The declared algorithm (truncated).
        algorithm: String,
    },
    /// `manifest_schema_version` is not 1.x.
    #[error("manifest_schema_version {version:?} is not supported (1.x only)")]
    UnsupportedSchemaVersion {
        /// The declared version (truncated).
        version: String,
    },
    /// An SS58 address does not decode.
    #[error("{which} {address:?} is not a valid SS58 address: {reason}")]
    MalformedSs58 {
        /// Which address: the manifest's signer or the miner's registered hotkey.
        which: &'static str,
        /// The address (truncated).
        address: String,
        /// Why.
        reason: Ss58Error,
    },
    /// The manifest's signer is not the miner's hotkey.
    #[error(
        "manifest signer_hotkey_ss58 {signer} is not the miner's hotkey {expected}; the manifest was signed by someone else"
    )]
    SignerMismatch {
        /// `signer_hotkey_ss58` from the manifest.
        signer: String,
        /// The hotkey we have for the miner.
        expected: String,
    },
    /// `manifest.sig` is absent but required.
    #[error("manifest.sig is missing and a signature is required")]
    MissingSignature,
    /// The signature is not a valid sr25519 signature of the manifest by the hotkey.
    #[error("manifest.sig does not verify against the miner's hotkey: {reason}")]
    BadSignature {
        /// Why.
        reason: String,
    },
    /// A stored frozen manifest does not load.
    #[error("stored frozen manifest is unusable: {reason}")]
    FrozenRecord {
        /// Why.
        reason: String,
    },
}

impl ManifestError {
    /// The coarse kind: hash, signer and signature failures are integrity failures.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ManifestError::TooLarge { .. } => ErrorKind::TooLarge,
            ManifestError::Malformed { .. }
            | ManifestError::UnsupportedHashAlgorithm { .. }
            | ManifestError::UnsupportedSchemaVersion { .. }
            | ManifestError::MalformedSs58 { .. } => ErrorKind::Format,
            ManifestError::WrongManifestHash { .. }
            | ManifestError::SignerMismatch { .. }
            | ManifestError::MissingSignature
            | ManifestError::BadSignature { .. } => ErrorKind::Integrity,
            ManifestError::FrozenRecord { .. } => ErrorKind::Internal,
        }
    }
}

fn malformed(reason: impl Into<String>) -> ManifestError {
    ManifestError::Malformed {
        reason: reason.into(),
    }
}

/// At most `n` characters of miner-supplied text, control characters replaced.
fn clip(text: &str, n: usize) -> String {
    let clipped: String = text
        .chars()
        .take(n)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > n {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// Lowercase hex sha256 of `sha256(utf8(path) ‖ 0x00 ‖ bytes)`.
pub fn file_hash(path: &str, bytes: &[u8]) -> String {
    let mut hasher = FileHasher::new(path);
    hasher.update(bytes);
    hasher.finish()
}

/// [`file_hash`] computed incrementally, e.g. over a body as it streams in.
#[derive(Clone)]
pub struct FileHasher(Sha256);

impl FileHasher {
    /// Starts the hash of the file at `path`.
    pub fn new(path: &str) -> FileHasher {
        let mut hasher = Sha256::new();
        hasher.update(path.as_bytes());
        hasher.update([0u8]);
        FileHasher(hasher)
    }

    /// Adds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The lowercase hex hash.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Lowercase hex sha256 of the exact manifest bytes.
pub fn manifest_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A parsed `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `"1.0"` for the current writer.
    pub manifest_schema_version: String,
    /// `"sha256"`.
    pub chunk_hash_algorithm: String,
    /// The miner hotkey that signed the manifest.
    pub signer_hotkey_ss58: String,
    /// Relative path (with `/`) → lowercase hex file hash.
    #[serde(deserialize_with = "unique_files")]
    pub files: BTreeMap<String, String>,
    /// Any other keys (e.g. `profile_structure_version`), kept as they are.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn unique_files<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct FilesVisitor;
    impl<'de> Visitor<'de> for FilesVisitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of path → sha256 hex")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut files = BTreeMap::new();
            while let Some((path, hash)) = map.next_entry::<String, String>()? {
                if files.contains_key(&path) {
                    return Err(serde::de::Error::custom(format!(
                        "path {:?} is listed twice",
                        clip(&path, 200)
                    )));
                }
                files.insert(path, hash);
            }
            Ok(files)
        }
    }
    d.deserialize_map(FilesVisitor)
}

/// Whether `path` is a safe relative store path: non-empty `/`-separated components, none
/// empty, `.` or `..`, no backslash, control character, `?`, `#` or `%`.
pub fn is_valid_store_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 1024
        && !path.contains(|c: char| c.is_control() || matches!(c, '\\' | '?' | '#' | '%'))
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Manifest {
    /// Parses and validates `manifest.json` bytes (size, JSON shape, paths, hash syntax). The
    /// hash algorithm and schema version are checked by [`Manifest::check_supported`].
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                file: "manifest.json",
                size: bytes.len(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let mut manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| malformed(clip(&e.to_string(), 300)))?;
        for (path, hash) in manifest.files.iter_mut() {
            if !is_valid_store_path(path) {
                return Err(malformed(format!(
                    "file path {:?} is not a safe relative path",
                    clip(path, 200)
                )));
            }
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed(format!(
                    "hash of {:?} is not 64 hex digits",
                    clip(path, 200)
                )));
            }
            hash.make_ascii_lowercase();
        }
        Ok(manifest)
    }

    /// Refuses hash algorithms other than sha256 and schema versions other than 1.x.
    pub fn check_supported(&self) -> Result<(), ManifestError> {
        if self.chunk_hash_algorithm != SHA256 {
            return Err(ManifestError::UnsupportedHashAlgorithm {
                algorithm: clip(&self.chunk_hash_algorithm, 40),
            });
        }
        let version = self.manifest_schema_version.as_str();
        let major_one = version == "1"
            || version.strip_prefix("1.").is_some_and(|minor| {
                !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
            });
        if !major_one {
            return Err(ManifestError::UnsupportedSchemaVersion {
                version: clip(version, 40),
            });
        }
        Ok(())
    }

    /// The expected hash of `path`, if listed.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }
}

/// SS58 address checksum prefix.
const SS58_PREFIX: &[u8] = b"SS58PRE";

/// A decoded SS58 address: network prefix and 32-byte public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ss58Address {
    /// The network prefix (42 = generic substrate).
    pub network: u16,
    /// The sr25519 public key.
    pub public_key: [u8; 32],
}

wx_model::message_error! {
    /// Why a text is not an SS58 address of a 32-byte account, in words.
    pub struct Ss58Error;
}

/// Decodes an SS58 address of a 32-byte account; the error is the reason, in words.
pub fn ss58_decode(address: &str) -> Result<Ss58Address, Ss58Error> {
    if address.is_empty() || address.len() > 64 {
        return Err("wrong length".to_owned().into());
    }
    let raw = bs58::decode(address)
        .into_vec()
        .map_err(|e| format!("not base58 ({e})"))?;
    let first = *raw.first().ok_or("empty")?;
    let (prefix_len, network) = match first {
        0..=63 => (1, u16::from(first)),
        64..=127 => {
            let second = *raw.get(1).ok_or("truncated network prefix")?;
            let lower = (first << 2) | (second >> 6);
            let upper = second & 0b0011_1111;
            (2, u16::from(lower) | (u16::from(upper) << 8))
        }
        _ => return Err(format!("reserved prefix byte {first}").into()),
    };
    if raw.len() != prefix_len + 32 + 2 {
        return Err(format!(
            "{} bytes after base58 decoding, expected {} for a 32-byte account",
            raw.len(),
            prefix_len + 34
        )
        .into());
    }
    let body = &raw[..prefix_len + 32];
    let checksum = Blake2b512::new()
        .chain_update(SS58_PREFIX)
        .chain_update(body)
        .finalize();
    if checksum[..2] != raw[prefix_len + 32..] {
        return Err("checksum mismatch".to_owned().into());
    }
    let mut public_key = [0u8; 32];
    public_key.copy_from_slice(&raw[prefix_len..prefix_len + 32]);
    Ok(Ss58Address {
        network,
        public_key,
    })
}

/// Parses `manifest.sig`: 64 raw bytes, or the same as 128 hex digits (optionally `0x`-prefixed,
/// surrounding whitespace ignored).
pub fn parse_signature_file(bytes: &[u8]) -> Result<[u8; 64], ManifestError> {
    if bytes.len() > MAX_SIGNATURE_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            file: "manifest.sig",
            size: bytes.len(),
            limit: MAX_SIGNATURE_FILE_BYTES,
        });
    }
    let bad = |reason: String| ManifestError::BadSignature { reason };
    if bytes.len() == 64 {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(bytes);
        return Ok(sig);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| bad(format!("{} bytes, expected 64 raw bytes", bytes.len())))?
        .trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let decoded = hex::decode(text).map_err(|_| {
        bad(format!(
            "{} bytes, expected 64 raw bytes or 128 hex digits",
            bytes.len()
        ))
    })?;
    <[u8; 64]>::try_from(decoded.as_slice()).map_err(|_| {
        bad(format!(
            "{} bytes after hex decoding, expected 64",
            decoded.len()
        ))
    })
}

/// Verifies an sr25519 signature (context `substrate`) of `message` by `public_key`, also
/// accepting a signature of `<Bytes>` ‖ message ‖ `</Bytes>` (what polkadot-js wallets sign).
pub fn verify_signature(
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), ManifestError> {
    let bad = |reason: &str| ManifestError::BadSignature {
        reason: reason.to_owned(),
    };
    let key = schnorrkel::PublicKey::from_bytes(public_key)
        .map_err(|_| bad("the hotkey is not a valid sr25519 public key"))?;
    let sig = schnorrkel::Signature::from_bytes(signature)
        .map_err(|_| bad("not an sr25519 signature (marker bit or scalar invalid)"))?;
    if key.verify_simple(SIGNING_CONTEXT, message, &sig).is_ok() {
        return Ok(());
    }
    let mut wrapped = Vec::with_capacity(message.len() + 15);
    wrapped.extend_from_slice(b"<Bytes>");
    wrapped.extend_from_slice(message);
    wrapped.extend_from_slice(b"</Bytes>");
    key.verify_simple(SIGNING_CONTEXT, &wrapped, &sig)
        .map_err(|_| bad("the signature is not by this hotkey over these manifest bytes"))
}

/// Whether a missing `manifest.sig` is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignaturePolicy {
    /// A signature must be present and valid.
    Required,
    /// Verified when present (docs/data.md §2.2); a store without `manifest.sig` is accepted on the
    /// strength of the claimed hash alone.
    IfPresent,
}

/// What the miner told us, against which the manifest is checked.
#[derive(Debug, Clone, Copy)]
pub struct ManifestClaim<'a> {
    /// The manifest hash the miner claimed (`verification_hash`), hex.
    pub claimed_sha256: &'a str,
    /// The miner's hotkey, as registered (SS58).
    pub miner_hotkey_ss58: &'a str,
    /// Whether the signature may be absent.
    pub signature_policy: SignaturePolicy,
}

/// Whether the frozen manifest's signature was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    /// `manifest.sig` verified against the miner's hotkey.
    Verified,
    /// No `manifest.sig` was served (allowed by [`SignaturePolicy::IfPresent`]).
    Absent,
}

/// Checks `manifest.json` bytes (and `manifest.sig`, if any) against the miner's claim and
/// freezes the result. Checks, in order: size; sha256 against the claimed hash; JSON shape;
/// hash algorithm and schema version; both SS58 addresses; signer = hotkey (same public key);
/// signature.
pub fn verify_manifest(
    manifest_bytes: &[u8],
    signature_file: Option<&[u8]>,
    claim: &ManifestClaim<'_>,
) -> Result<FrozenManifest, ManifestError> {
    if manifest_bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            file: "manifest.json",
            size: manifest_bytes.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let computed = manifest_hash(manifest_bytes);
    let claimed = claim.claimed_sha256.trim().to_ascii_lowercase();
    if claimed != computed {
        return Err(ManifestError::WrongManifestHash {
            claimed: clip(&claimed, 64),
            computed,
        });
    }
    let manifest = Manifest::parse(manifest_bytes)?;
    manifest.check_supported()?;
    let expected =
        ss58_decode(claim.miner_hotkey_ss58).map_err(|reason| ManifestError::MalformedSs58 {
            which: "the miner's registered hotkey",
            address: clip(claim.miner_hotkey_ss58, 64),
            reason,
        })?;
    let signer = ss58_decode(&manifest.signer_hotkey_ss58).map_err(|reason| {
        ManifestError::MalformedSs58 {
            which: "manifest signer_hotkey_ss58",
            address: clip(&manifest.signer_hotkey_ss58, 64),
            reason,
        }
    })?;
    if signer.public_key != expected.public_key {
        return Err(ManifestError::SignerMismatch {
            signer: clip(&manifest.signer_hotkey_ss58, 64),
            expected: clip(claim.miner_hotkey_ss58, 64),
        });
    }
    let signature = match (signature_file, claim.signature_policy) {
        (Some(file), _) => {
            let sig = parse_signature_file(file)?;
            verify_signature(&expected.public_key, manifest_bytes, &sig)?;
            SignatureStatus::Verified
        }
        (None, SignaturePolicy::Required) => return Err(ManifestError::MissingSignature),
        (None, SignaturePolicy::IfPresent) => SignatureStatus::Absent,
    };
    let text = String::from_utf8(manifest_bytes.to_vec()).map_err(|_| malformed("not UTF-8"))?;
    Ok(FrozenManifest {
        manifest_sha256: computed,
        signature,
        manifest,
        text,
    })
}

/// A verified manifest, frozen: every later read of the store is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenManifest {
    manifest_sha256: String,
    signature: SignatureStatus,
    manifest: Manifest,
    text: String,
}

/// The JSON record of a frozen manifest in the database.
#[derive(Serialize, Deserialize)]
struct FrozenRecord {
    /// Record layout version.
    format: u32,
    manifest_sha256: String,
    signature: SignatureStatus,
    /// The exact manifest text; its sha256 is re-checked on load.
    manifest: String,
}

const FROZEN_RECORD_FORMAT: u32 = 1;

impl FrozenManifest {
    /// sha256 hex of the exact manifest bytes (= the miner's claimed hash).
    pub fn manifest_sha256(&self) -> &str {
        &self.manifest_sha256
    }

    /// Whether the signature was verified or absent.
    pub fn signature_status(&self) -> SignatureStatus {
        self.signature
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The exact manifest bytes that were verified.
    pub fn manifest_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The expected file hash of `path`, if the manifest lists it.
    pub fn expected_hash(&self, path: &str) -> Option<&str> {
        self.manifest.file(path)
    }

    /// The record stored in `weather_miner_responses.frozen_manifest`: the exact manifest text,
    /// its hash and the signature status.
    pub fn to_db_json(&self) -> String {
        serde_json::to_string(&FrozenRecord {
            format: FROZEN_RECORD_FORMAT,
            manifest_sha256: self.manifest_sha256.clone(),
            signature: self.signature,
            manifest: self.text.clone(),
        })
        .expect("a frozen record serializes")
    }

    /// Loads a stored record, re-checking that the manifest text still hashes to the stored
    /// hash and still parses.
    pub fn from_db_json(json: &str) -> Result<FrozenManifest, ManifestError> {
        let bad = |reason: String| ManifestError::FrozenRecord { reason };
        let record: FrozenRecord =
            serde_json::from_str(json).map_err(|e| bad(clip(&e.to_string(), 200)))?;
        if record.format != FROZEN_RECORD_FORMAT {
            return Err(bad(format!("unknown record format {}", record.format)));
        }
        let computed = manifest_hash(record.manifest.as_bytes());
        if computed != record.manifest_sha256 {
            return Err(bad(format!(
                "the stored manifest hashes to {computed}, not the stored {}",
                clip(&record.manifest_sha256, 64)
            )));
        }
        let manifest =
            Manifest::parse(record.manifest.as_bytes()).map_err(|e| bad(e.to_string()))?;
        Ok(FrozenManifest {
            manifest_sha256: record.manifest_sha256,
            signature: record.signature,
            manifest,
            text: record.manifest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Alice's well-known development key (`//Alice`), generic substrate prefix 42.
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const ALICE_PUBLIC: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

    #[test]
    fn file_hash_is_path_nul_bytes() {
        // sha256(b"2t/0.0.0\x00abc"), computed independently with Python hashlib
        assert_eq!(
            file_hash("2t/0.0.0", b"abc"),
            "49a8f5c06e3ecf6e215b990dcf8839191b441afef34d7026494f4d3268f38a69"
        );
        assert_ne!(file_hash("a", b"bc"), file_hash("ab", b"c"));
        let mut incremental = FileHasher::new("2t/0.0.0");
        incremental.update(b"a");
        incremental.update(b"bc");
        assert_eq!(incremental.finish(), file_hash("2t/0.0.0", b"abc"));
    }

    #[test]
    fn ss58_decodes_alice_and_rejects_corruption() {
        let decoded = ss58_decode(ALICE).unwrap();
        assert_eq!(decoded.network, 42);
        assert_eq!(hex::encode(decoded.public_key), ALICE_PUBLIC);
        // one character changed: checksum fails
        let mut chars: Vec<char> = ALICE.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let corrupted: String = chars.into_iter().collect();
        assert!(ss58_decode(&corrupted).is_err());
        assert!(
            ss58_decode("0OIl")
                .unwrap_err()
                .to_string()
                .contains("base58")
        );
        assert!(ss58_decode("").is_err());
        assert!(ss58_decode(&ALICE[..40]).is_err());
    }

    #[test]
    fn ss58_two_byte_prefix_round_trip() {
        // encode the Alice key with network 1234 by hand and decode it back
        let network: u16 = 1234;
        let first = ((network & 0b1111_1100) >> 2) as u8 | 0b0100_0000;
        let second = ((network >> 8) as u8) | (((network & 0b11) as u8) << 6);
        let mut body = vec![first, second];
        body.extend_from_slice(&hex::decode(ALICE_PUBLIC).unwrap());
        let checksum = Blake2b512::new()
            .chain_update(SS58_PREFIX)
            .chain_update(&body)
            .finalize();
        body.extend_from_slice(&checksum[..2]);
        let address = bs58::encode(body).into_string();
        let decoded = ss58_decode(&address).unwrap();
        assert_eq!(decoded.network, network);
        assert_eq!(hex::encode(decoded.public_key), ALICE_PUBLIC);
    }

    fn manifest_text(signer: &str, algorithm: &str) -> String {
        format!(
            "{{\n    \"chunk_hash_algorithm\": \"{algorithm}\",\n    \"files\": {{\n        \".zgroup\": \"{}\"\n    }},\n    \"manifest_schema_version\": \"1.0\",\n    \"profile_structure_version\": \"3.4.0-verify_on_read_mapper\",\n    \"signer_hotkey_ss58\": \"{signer}\"\n}}",
            file_hash(".zgroup", b"{}")
        )
    }

    #[test]
    fn parse_keeps_extra_keys_and_rejects_bad_paths() {
        let text = manifest_text(ALICE, "sha256");
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.files.len(), 1);
        assert_eq!(
            m.extra["profile_structure_version"],
            serde_json::json!("3.4.0-verify_on_read_mapper")
        );
        m.check_supported().unwrap();
        let bad_path = text.replace("\".zgroup\"", "\"../etc/passwd\"");
        assert!(matches!(
            Manifest::parse(bad_path.as_bytes()),
            Err(ManifestError::Malformed { .. })
        ));
        let duplicate = text.replace(
            "\".zgroup\": ",
            &format!("\".zgroup\": \"{}\",\n \".zgroup\": ", "0".repeat(64)),
        );
        let err = Manifest::parse(duplicate.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        let bad_hash = text.replace(&file_hash(".zgroup", b"{}"), "abc");
        assert!(matches!(
            Manifest::parse(bad_hash.as_bytes()),
            Err(ManifestError::Malformed { .. })
        ));
        assert!(matches!(
            Manifest::parse(b"[1,2]"),
            Err(ManifestError::Malformed { .. })
        ));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::parse(&big),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn verify_checks_hash_algorithm_and_signer_before_signature() {
        let text = manifest_text(ALICE, "sha256");
        let claim = ManifestClaim {
            claimed_sha256: &manifest_hash(text.as_bytes()),
            miner_hotkey_ss58: ALICE,
            signature_policy: SignaturePolicy::IfPresent,
        };
        let frozen = verify_manifest(text.as_bytes(), None, &claim).unwrap();
        assert_eq!(frozen.signature_status(), SignatureStatus::Absent);

        let wrong = ManifestClaim {
            claimed_sha256: &"ab".repeat(32),
            ..claim
        };
        assert!(matches!(
            verify_manifest(text.as_bytes(), None, &wrong),
            Err(ManifestError::WrongManifestHash { .. })
        ));

        let xx = manifest_text(ALICE, "xxh64");
        let claim_xx = ManifestClaim {
            claimed_sha256: &manifest_hash(xx.as_bytes()),
            ..claim
        };
        assert!(matches!(
            verify_manifest(xx.as_bytes(), None, &claim_xx),
            Err(ManifestError::UnsupportedHashAlgorithm { .. })
        ));

        // Bob's dev address as the signer
        let bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
        let other = manifest_text(bob, "sha256");
        let claim_other = ManifestClaim {
            claimed_sha256: &manifest_hash(other.as_bytes()),
            ..claim
        };
        assert!(matches!(
            verify_manifest(other.as_bytes(), None, &claim_other),
            Err(ManifestError::SignerMismatch { .. })
        ));

        let garbage = manifest_text("not-an-address", "sha256");
        let claim_garbage = ManifestClaim {
            claimed_sha256: &manifest_hash(garbage.as_bytes()),
            ..claim
        };
        assert!(matches!(
            verify_manifest(garbage.as_bytes(), None, &claim_garbage),
            Err(ManifestError::MalformedSs58 { .. })
        ));

        let required = ManifestClaim {
            signature_policy: SignaturePolicy::Required,
            ..claim
        };
        assert_eq!(
            verify_manifest(text.as_bytes(), None, &required),
            Err(ManifestError::MissingSignature)
        );
        // 64 bytes that are not a signature by Alice
        let err = verify_manifest(text.as_bytes(), Some(&[7u8; 64]), &required).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn signatures_from_schnorrkel_verify_raw_wrapped_and_hex() {
        let keypair = schnorrkel::MiniSecretKey::from_bytes(&[3u8; 32])
            .unwrap()
            .expand_to_keypair(schnorrkel::ExpansionMode::Ed25519);
        let public = keypair.public.to_bytes();
        let message = b"manifest bytes";
        let raw = keypair.sign_simple(SIGNING_CONTEXT, message).to_bytes();
        verify_signature(&public, message, &raw).unwrap();
        let wrapped = keypair
            .sign_simple(SIGNING_CONTEXT, b"<Bytes>manifest bytes</Bytes>")
            .to_bytes();
        verify_signature(&public, message, &wrapped).unwrap();
        assert!(verify_signature(&public, b"other bytes", &raw).is_err());
        let hex_file = format!("0x{}\n", hex::encode(raw));
        assert_eq!(parse_signature_file(hex_file.as_bytes()).unwrap(), raw);
        assert!(parse_signature_file(&[0u8; 63]).is_err());
        assert!(matches!(
            parse_signature_file(&[0u8; 2000]),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn frozen_manifest_round_trips_and_detects_tampering() {
        let text = manifest_text(ALICE, "sha256");
        let claim = ManifestClaim {
            claimed_sha256: &manifest_hash(text.as_bytes()),
            miner_hotkey_ss58: ALICE,
            signature_policy: SignaturePolicy::IfPresent,
        };
        let frozen = verify_manifest(text.as_bytes(), None, &claim).unwrap();
        let json = frozen.to_db_json();
        let back = FrozenManifest::from_db_json(&json).unwrap();
        assert_eq!(back, frozen);
        assert_eq!(back.manifest_bytes(), text.as_bytes());
        assert_eq!(
            back.expected_hash(".zgroup"),
            Some(file_hash(".zgroup", b"{}").as_str())
        );
        let tampered = json.replace("3.4.0", "3.4.1");
        assert!(matches!(
            FrozenManifest::from_db_json(&tampered),
            Err(ManifestError::FrozenRecord { .. })
        ));
    }
}
