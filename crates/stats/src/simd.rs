//! Hot loops compiled a second time for AVX2 and chosen at run time.
//!
//! The workspace builds for baseline x86-64 (SSE2: two lanes of `f64`) so that one binary runs
//! on any x86-64 machine. A loop whose conversions, square roots or comparisons the compiler
//! vectorises gets a `#[target_feature(enable = "avx2")]` copy (the same body, `#[inline(always)]`;
//! the TFCE flood's enables POPCNT too, for a cell's rank) and [`avx2_or!`] calls that copy when
//! the CPU has AVX2 and POPCNT (every AVX2 CPU has it). The operations on each value are the
//! same in both copies (Rust does not contract or reorder floating-point operations), so the
//! results are the same bytes; the tests run whichever copy the machine takes, and the
//! benchmarks' dumps were compared with a build without the copies.

/// `avx2_or!(avx2_call, baseline_call)`: returns `avx2_call` (a call of a
/// `#[target_feature(enable = "avx2")]` or `"avx2,popcnt"` function) from the enclosing function
/// when the CPU has AVX2 and POPCNT, else evaluates to `baseline_call`. This is the workspace's
/// one `unsafe` block: calling a `target_feature` function is sound exactly when the CPU has the
/// features, which are checked just before.
macro_rules! avx2_or {
    ($avx2:expr, $baseline:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            // SAFETY: the CPU has AVX2 and POPCNT (checked above), the features the copies
            // enable: the only precondition of the call
            #[allow(unsafe_code)]
            return unsafe { $avx2 };
        }
        $baseline
    }};
}
pub(crate) use avx2_or;
