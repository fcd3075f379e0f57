//! Damaged GRIB2 bytes never panic the decoder: every mutation decodes or is a `GribError`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use wx_grib::grib;

static CAUGHT: AtomicUsize = AtomicUsize::new(0);

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gfs")
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_and_truncated_messages_are_errors_not_panics() {
    // panics inside the third-party unpacker are caught by the decoder; count them quietly
    std::panic::set_hook(Box::new(|_| {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
    }));
    let mut rng = Lcg(42);
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for rel in [
        "real/gfs.20110110/12/atmos/gfs.t12z.pgrb2.2p5.f120",
        "packing/tmp2m_0p25_regional_simple.grib2",
        "packing/tmp2m_0p25_regional_complex.grib2",
        "packing/tmp2m_0p50_regional_png.grib2",
    ] {
        let bytes = std::fs::read(testdata().join(rel)).unwrap();
        for m in grib::split_messages(&bytes).unwrap().into_iter().take(6) {
            messages.push(m.to_vec());
        }
    }
    let (mut ok, mut failed) = (0, 0);
    for original in &messages {
        for round in 0..150 {
            let mut m = original.clone();
            match round % 3 {
                // flip a few bytes anywhere after the indicator
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = 16 + rng.below(m.len() - 20);
                        m[at] ^= 1 << rng.below(8);
                    }
                }
                // overwrite a header byte of a section (lengths, template numbers, counts)
                1 => {
                    let at = 16 + rng.below(200.min(m.len() - 20));
                    m[at] = rng.next() as u8;
                }
                // truncate, and make section 0 agree so the walk goes deeper
                _ => {
                    let keep = 20 + rng.below(m.len() - 20);
                    m.truncate(keep);
                    let n = m.len();
                    m[n - 4..].copy_from_slice(b"7777");
                    m[8..16].copy_from_slice(&(n as u64).to_be_bytes());
                }
            }
            match grib::decode_message(&m) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.reason.is_empty());
                    failed += 1;
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        failed > 400 && ok > 100,
        "{failed} mutations rejected, {ok} decoded"
    );
    eprintln!(
        "{ok} mutations decoded, {failed} rejected, {} decoder panics caught",
        CAUGHT.load(Ordering::Relaxed)
    );
}
