//! Gaussian smoothing: one separable kernel for the workspace (`gaussian`: the sampled kernel,
//! the border rule, the layout, `f32` or `f64`), and the volumes' smoothing by FWHM (`fwhm`,
//! which uses it). Dependencies run `fwhm` → `gaussian`.

mod fwhm;
mod gaussian;

pub use fwhm::{FWHM_PER_SIGMA, fwhm_to_sigma, gaussian_smooth3, smooth_fwhm, smooth_fwhm_masked};
pub use gaussian::{Edges, Gaussian, Layout, Real, TRUNCATE_SIGMAS, gaussian_kernel};

#[cfg(test)]
mod tests;
