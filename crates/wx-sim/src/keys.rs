//! Deterministic miner identities: sr25519 hotkeys (SS58, generic substrate prefix 42),
//! deterministic signatures and bearer tokens.

use blake2::{Blake2b512, Digest as _};
use rand::SeedableRng;
use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey};
use sha2::Sha256;
use wx_data::manifest::SIGNING_CONTEXT;

/// The generic substrate SS58 network prefix (what Bittensor hotkeys use).
pub const SS58_GENERIC_PREFIX: u8 = 42;

/// A miner's sr25519 keypair, derived from the world seed and the uid.
///
/// The mini secret is `sha256("wx-sim miner hotkey" ‖ seed ‖ uid)`, expanded like substrate's
/// `sr25519::Pair::from_seed` (Ed25519 expansion mode). Test keys only: anyone who knows the
/// seed knows the secret.
#[derive(Clone)]
pub struct MinerKey {
    mini: [u8; 32],
    keypair: Keypair,
    ss58: String,
}

impl std::fmt::Debug for MinerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerKey")
            .field("ss58", &self.ss58)
            .finish_non_exhaustive()
    }
}

impl MinerKey {
    /// The key of miner `uid` in a world with `seed`.
    pub fn derive(seed: u64, uid: u16) -> MinerKey {
        let mini: [u8; 32] = Sha256::new()
            .chain_update(b"wx-sim miner hotkey")
            .chain_update(seed.to_le_bytes())
            .chain_update(uid.to_le_bytes())
            .finalize()
            .into();
        let keypair = MiniSecretKey::from_bytes(&mini)
            .expect("32 bytes are a mini secret key")
            .expand_to_keypair(ExpansionMode::Ed25519);
        let ss58 = ss58_encode(&keypair.public.to_bytes(), SS58_GENERIC_PREFIX);
        MinerKey {
            mini,
            keypair,
            ss58,
        }
    }

    /// The SS58 address of the public key (the miner's hotkey).
    pub fn ss58(&self) -> &str {
        &self.ss58
    }

    /// The 32-byte sr25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.keypair.public.to_bytes()
    }

    /// The 64-byte sr25519 signature (context `substrate`) of `message`, as `manifest.sig`.
    ///
    /// sr25519 signing is randomised; here the randomness comes from
    /// `sha256(mini secret ‖ message)`, so the same key and message give the same bytes (the
    /// nonce still depends on the message, so no two messages share one).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let rng_seed: [u8; 32] = Sha256::new()
            .chain_update(self.mini)
            .chain_update(message)
            .finalize()
            .into();
        let rng = rand::rngs::StdRng::from_seed(rng_seed);
        let transcript = schnorrkel::context::attach_rng(
            schnorrkel::signing_context(SIGNING_CONTEXT).bytes(message),
            rng,
        );
        self.keypair.sign(transcript).to_bytes()
    }
}

/// SS58 encoding of a 32-byte account with a one-byte network prefix (< 64): base58 of
/// prefix ‖ key ‖ blake2b-512("SS58PRE" ‖ prefix ‖ key)[..2].
pub fn ss58_encode(public_key: &[u8; 32], prefix: u8) -> String {
    assert!(prefix < 64, "one-byte SS58 prefixes only");
    let mut body = Vec::with_capacity(35);
    body.push(prefix);
    body.extend_from_slice(public_key);
    let checksum = Blake2b512::new()
        .chain_update(b"SS58PRE")
        .chain_update(&body)
        .finalize();
    body.extend_from_slice(&checksum[..2]);
    bs58::encode(body).into_string()
}

/// The bearer token of miner `uid`: 32 hex digits of `sha256("wx-sim token" ‖ seed ‖ uid)`.
pub fn miner_token(seed: u64, uid: u16) -> String {
    let digest = Sha256::new()
        .chain_update(b"wx-sim token")
        .chain_update(seed.to_le_bytes())
        .chain_update(uid.to_le_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use wx_data::manifest::{ss58_decode, verify_signature};

    #[test]
    fn alice_encodes_to_her_well_known_address() {
        // //Alice's public key and SS58 address (generic prefix 42)
        let public: [u8; 32] =
            hex::decode("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            ss58_encode(&public, 42),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
    }

    #[test]
    fn the_fixture_seed_gives_the_fixture_hotkey() {
        // testdata's hotkey: mini secret sha256("wx-testdata miner hotkey 0"), made by
        // py-sr25519-bindings' pair_from_seed
        let mini: [u8; 32] = Sha256::digest(b"wx-testdata miner hotkey 0").into();
        let pair = MiniSecretKey::from_bytes(&mini)
            .unwrap()
            .expand_to_keypair(ExpansionMode::Ed25519);
        assert_eq!(
            ss58_encode(&pair.public.to_bytes(), 42),
            "5GWVDBnHvrqnfyJdVqt6nchsuTgocCjx3yCTYD6gw5E6QtCE"
        );
    }

    #[test]
    fn keys_are_deterministic_and_signatures_verify() {
        let a = MinerKey::derive(7, 3);
        let b = MinerKey::derive(7, 3);
        assert_eq!(a.ss58(), b.ss58());
        assert_ne!(a.ss58(), MinerKey::derive(7, 4).ss58());
        assert_ne!(a.ss58(), MinerKey::derive(8, 3).ss58());
        let decoded = ss58_decode(a.ss58()).unwrap();
        assert_eq!(decoded.network, 42);
        assert_eq!(decoded.public_key, a.public_key());
        let sig = a.sign(b"manifest");
        assert_eq!(sig, b.sign(b"manifest"), "deterministic");
        assert_ne!(sig, a.sign(b"manifest2"));
        verify_signature(&a.public_key(), b"manifest", &sig).unwrap();
        assert!(verify_signature(&a.public_key(), b"other", &sig).is_err());
        assert_eq!(miner_token(7, 3), miner_token(7, 3));
        assert_ne!(miner_token(7, 3), miner_token(7, 4));
        assert_eq!(miner_token(7, 3).len(), 32);
    }
}
