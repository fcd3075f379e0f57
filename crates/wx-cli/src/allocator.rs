//! The options both binaries give mimalloc, their global allocator.
//!
//! A 0.25° lead moves about 400 MB of chunk buffers per 13-level variable through the
//! allocator: compressed bytes read from the store (tens of MB each), and the decoded fields
//! the decode-buffer pool does not keep. mimalloc hands freed memory back to the kernel after a
//! purge delay (1 s by default); the next buffer is then fresh memory, which the kernel must
//! fault in and zero again: scoring several leads in a row, page zeroing was the largest single
//! item of the profile. With a longer delay, memory freed by one variable is still mapped when
//! the next one needs it, while an idle daemon still gives it back (figures: docs/data.md
//! §4.3).

/// How long freed memory stays mapped before mimalloc returns it to the kernel, unless the
/// operator sets `MIMALLOC_PURGE_DELAY` (milliseconds; `-1`: never).
pub const PURGE_DELAY_MS: i64 = 10_000;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (`mimalloc.h`, v2 and v3), which
/// libmimalloc-sys does not name. The test checks that it reads mimalloc's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is set in
/// the environment (mimalloc then reads it). Call it first thing in `main`; it only changes
/// when memory freed from then on is returned to the kernel.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table (atomically); it
    // has no other precondition, and the purge delay may change at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(
            MI_OPTION_PURGE_DELAY,
            PURGE_DELAY_MS as std::os::raw::c_long,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc's purge delay now in force, in milliseconds (`-1`: never).
    fn purge_delay_ms() -> i64 {
        // SAFETY: reads an integer from mimalloc's option table (atomically, initialising it from
        // the environment on first use); no precondition.
        #[allow(unsafe_code)]
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        #[allow(clippy::useless_conversion)] // `c_long` is narrower than `i64` on some platforms
        i64::from(value)
    }

    /// mimalloc's own purge delay (v3), in milliseconds.
    const MIMALLOC_DEFAULT_PURGE_DELAY_MS: i64 = 1_000;

    #[test]
    fn the_purge_delay_is_set_unless_the_environment_sets_it() {
        let before = purge_delay_ms();
        configure();
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            // the operator's value, read by mimalloc, is left alone
            Ok(_) => assert_eq!(purge_delay_ms(), before),
            Err(_) => {
                // the option number is the purge delay's: it held mimalloc's default
                assert_eq!(before, MIMALLOC_DEFAULT_PURGE_DELAY_MS);
                assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
            }
        }
    }
}
