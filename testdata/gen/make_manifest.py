#!/usr/bin/env python3
"""Signs the miner store fixtures the way a miner does: `python testdata/gen/make_manifest.py TESTDATA`.

For every `TESTDATA/stores/miner_*` store this writes, in the store root,

* `manifest.json` — exactly the miner writer's bytes (Gaia `utils/hashing.py`
  `generate_manifest_and_signature`): every file under the store (recursive, sorted, excluding the
  root `manifest.json` / `manifest.sig`), `sha256(utf8(relative path with '/') || 0x00 || bytes)`
  in lowercase hex, serialized with `json.dumps(sort_keys=True, indent=4)` as UTF-8, no trailing
  newline; keys `manifest_schema_version`, `profile_structure_version`, `chunk_hash_algorithm`,
  `signer_hotkey_ss58`, `files`;
* `manifest.sig` — the raw 64-byte sr25519 signature (signing context "substrate") of those bytes
  by the test hotkey, made with py-sr25519-bindings (what substrate-interface's `Keypair.sign` uses);

and next to the store `TESTDATA/stores/<store>.manifest-info.json` with the claimed hash
(`manifest_sha256`), the hotkey (`signer_hotkey_ss58`, SS58 generic prefix 42), its public key and
the file count.

It also writes two variants of `miner_v2_blosc_zstd` under `TESTDATA/manifests/<variant>/`
(manifest.json, manifest.sig, info.json), served in place of the store's own manifest by the tests:

* `miner_v2_blosc_zstd.badsize`: for the store with `2t/0.0.0` replaced by
  `TESTDATA/corrupt/miner_v2_blosc_zstd.2t.0.0.0.short` — integrity passes for that chunk and the
  decoded-size check is what must fail;
* `miner_v2_blosc_zstd.unlisted`: the store's manifest without `2t/3.0.0` — a file the store has
  but the miner did not sign.

Single store: `make_manifest.py --store DIR [--seed-hex HEX] [--replace KEY=FILE] [--omit KEY]
[--out-dir DIR] [--info PATH]`.

Deterministic: manifest.json and the info files are byte-identical on every run. sr25519 signing
is randomized, so an existing manifest.sig is kept when it still verifies for the new manifest
bytes and the same key; otherwise a new one is made.

Run after make_stores.py (which deletes and rewrites the store directories).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import base58
import sr25519

# The fixtures' miner hotkey: sr25519 mini-secret = sha256("wx-testdata miner hotkey 0").
# A test key, published here on purpose; never use it for anything else.
DEFAULT_SEED_HEX = hashlib.sha256(b"wx-testdata miner hotkey 0").hexdigest()
SS58_GENERIC_PREFIX = 42
MANIFEST_SCHEMA_VERSION = "1.0"
PROFILE_STRUCTURE_VERSION = "3.4.0-verify_on_read_mapper"
ROOT_EXCLUDED = {"manifest.json", "manifest.sig"}


def ss58_encode(public_key: bytes, prefix: int = SS58_GENERIC_PREFIX) -> str:
    assert len(public_key) == 32 and 0 <= prefix < 64
    body = bytes([prefix]) + public_key
    checksum = hashlib.blake2b(b"SS58PRE" + body, digest_size=64).digest()[:2]
    return base58.b58encode(body + checksum).decode("ascii")


def file_hash(relative_path: str, data: bytes) -> str:
    return hashlib.sha256(relative_path.encode("utf-8") + b"\x00" + data).hexdigest()


def store_files(store: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(store.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(store).as_posix()
        if rel in ROOT_EXCLUDED:
            continue
        files.append((rel, path))
    return sorted(files)


def manifest_bytes(store: Path, hotkey: str, replace: dict[str, Path],
                   omit: set[str]) -> tuple[bytes, int]:
    files = {}
    if omit - {rel for rel, _ in store_files(store)}:
        sys.exit(f"--omit keys not in the store: {sorted(omit)}")
    for rel, path in store_files(store):
        if rel in omit:
            continue
        data = replace[rel].read_bytes() if rel in replace else path.read_bytes()
        files[rel] = file_hash(rel, data)
    missing = set(replace) - set(files)
    if missing:
        sys.exit(f"--replace keys not in the store: {sorted(missing)}")
    manifest = {
        "manifest_schema_version": MANIFEST_SCHEMA_VERSION,
        "profile_structure_version": PROFILE_STRUCTURE_VERSION,
        "chunk_hash_algorithm": "sha256",
        "signer_hotkey_ss58": hotkey,
        "files": files,
    }
    return json.dumps(manifest, sort_keys=True, indent=4).encode("utf-8"), len(files)


def sign(store_name: str, seed_hex: str, replace: dict[str, Path], store: Path, out_dir: Path,
         info_path: Path, omit: set[str] = frozenset()) -> None:
    public, secret = sr25519.pair_from_seed(bytes.fromhex(seed_hex))
    hotkey = ss58_encode(public)
    data, count = manifest_bytes(store, hotkey, replace, set(omit))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").write_bytes(data)
    sig_path = out_dir / "manifest.sig"
    old = sig_path.read_bytes() if sig_path.exists() else b""
    if not (len(old) == 64 and sr25519.verify(old, data, public)):
        signature = sr25519.sign((public, secret), data)
        assert sr25519.verify(signature, data, public)
        sig_path.write_bytes(signature)
    info = {
        "store": store_name,
        "manifest_sha256": hashlib.sha256(data).hexdigest(),
        "signer_hotkey_ss58": hotkey,
        "public_key_hex": public.hex(),
        "signature": "manifest.sig: raw 64-byte sr25519, signing context 'substrate'",
        "files": count,
        "replaced": {k: str(v.name) for k, v in sorted(replace.items())},
        "omitted": sorted(omit),
    }
    info_path.parent.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, sort_keys=True, indent=2) + "\n")
    print(f"{store_name}: {count} files, manifest sha256 {info['manifest_sha256']}, signer {hotkey}")


def sign_all(testdata: Path, seed_hex: str) -> None:
    stores = testdata / "stores"
    miner_stores = sorted(p for p in stores.glob("miner_*") if p.is_dir())
    if not miner_stores:
        sys.exit(f"no miner_* stores under {stores}; run make_stores.py first")
    for store in miner_stores:
        sign(store.name, seed_hex, {}, store, store, stores / f"{store.name}.manifest-info.json")
    base = stores / "miner_v2_blosc_zstd"
    corrupt = testdata / "corrupt" / "miner_v2_blosc_zstd.2t.0.0.0.short"
    variant = testdata / "manifests" / "miner_v2_blosc_zstd.badsize"
    sign("miner_v2_blosc_zstd.badsize", seed_hex, {"2t/0.0.0": corrupt}, base, variant,
         variant / "info.json")
    variant = testdata / "manifests" / "miner_v2_blosc_zstd.unlisted"
    sign("miner_v2_blosc_zstd.unlisted", seed_hex, {}, base, variant, variant / "info.json",
         omit={"2t/3.0.0"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("testdata", nargs="?", type=Path, help="testdata directory (signs all miner stores)")
    ap.add_argument("--store", type=Path, help="sign this one store directory")
    ap.add_argument("--seed-hex", default=DEFAULT_SEED_HEX, help="32-byte sr25519 mini-secret, hex")
    ap.add_argument("--replace", action="append", default=[], metavar="KEY=FILE",
                    help="hash FILE's bytes for KEY instead of the store's file")
    ap.add_argument("--omit", action="append", default=[], metavar="KEY",
                    help="leave KEY out of the manifest")
    ap.add_argument("--out-dir", type=Path, help="where manifest.json/.sig go (default: the store)")
    ap.add_argument("--info", type=Path, help="info JSON path (default: <store>.manifest-info.json)")
    args = ap.parse_args()
    if len(bytes.fromhex(args.seed_hex)) != 32:
        sys.exit("--seed-hex must be 32 bytes")
    if args.store:
        replace = {}
        for item in args.replace:
            key, _, path = item.partition("=")
            replace[key] = Path(path)
        store = args.store
        out_dir = args.out_dir or store
        info = args.info or store.parent / f"{store.name}.manifest-info.json"
        sign(store.name, args.seed_hex, replace, store, out_dir, info, set(args.omit))
    elif args.testdata:
        sign_all(args.testdata, args.seed_hex)
    else:
        ap.error("give TESTDATA or --store DIR")


if __name__ == "__main__":
    main()
