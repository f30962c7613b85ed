//! Each subject's placement and shape: template world → native world.

use nalgebra::{Matrix3, Matrix4, Rotation3, Vector3, Vector4};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// A smooth nonlinear warp `u(p) = Σ_k a_k · sin(2π f_k · p + φ_k)` in template world (mm):
/// each component is a plane wave with its own direction, wavelength and amplitude.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warp {
    /// Displacement amplitude vector of each wave (mm).
    pub amplitude: Vec<[f64; 3]>,
    /// Wave vector of each wave (cycles per mm).
    pub frequency: Vec<[f64; 3]>,
    /// Phase of each wave (rad).
    pub phase: Vec<f64>,
}

impl Warp {
    /// Displacement at template world point `p` (mm).
    pub fn displacement(&self, p: [f64; 3]) -> [f64; 3] {
        let mut u = [0.0; 3];
        for ((a, f), ph) in self.amplitude.iter().zip(&self.frequency).zip(&self.phase) {
            let s = (std::f64::consts::TAU * (f[0] * p[0] + f[1] * p[1] + f[2] * p[2]) + ph).sin();
            for c in 0..3 {
                u[c] += a[c] * s;
            }
        }
        u
    }

    /// Largest possible Lipschitz constant of the displacement, `Σ |a|·2π|f|`: below 1 the warp
    /// `p + u(p)` is invertible (a diffeomorphism) and fixed-point inversion converges.
    pub fn lipschitz_bound(&self) -> f64 {
        self.amplitude
            .iter()
            .zip(&self.frequency)
            .map(|(a, f)| norm(a) * std::f64::consts::TAU * norm(f))
            .sum()
    }
}

fn norm(v: &[f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// Template world → subject native world: `q = A · (p + u(p))`, the nonlinear warp `u` applied
/// in template space, then the affine `A` (shape and position of the head in the scanner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectTransform {
    /// The affine part `A` (mm → mm, RAS), row-major.
    pub affine: [[f64; 4]; 4],
    /// The nonlinear part.
    pub warp: Warp,
}

impl SubjectTransform {
    /// Draws a subject: scaling 0.92–1.08 per axis, small shears, rotations up to about 6°,
    /// translations up to about 8 mm, and three plane waves of 1.5–3 mm amplitude with
    /// wavelengths of 70–140 mm.
    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        let scale = Matrix3::from_diagonal(&Vector3::new(
            rng.random_range(0.92..1.08),
            rng.random_range(0.92..1.08),
            rng.random_range(0.92..1.08),
        ));
        let mut shear = Matrix3::identity();
        shear[(0, 1)] = rng.random_range(-0.03..0.03);
        shear[(1, 2)] = rng.random_range(-0.03..0.03);
        let linear = shear * scale;
        let mut affine = Matrix4::identity();
        affine.fixed_view_mut::<3, 3>(0, 0).copy_from(&linear);
        let pose = random_rigid(rng, 6.0, 8.0);
        let affine = pose * affine;
        let mut warp = Warp {
            amplitude: vec![],
            frequency: vec![],
            phase: vec![],
        };
        for _ in 0..3 {
            let dir = random_unit(rng);
            let wavelength = rng.random_range(70.0..140.0);
            let amp = random_unit(rng).map(|x| x * rng.random_range(1.5..3.0));
            warp.amplitude.push(amp);
            warp.frequency.push(dir.map(|x| x / wavelength));
            warp.phase
                .push(rng.random_range(0.0..std::f64::consts::TAU));
        }
        debug_assert!(warp.lipschitz_bound() < 0.9);
        Self {
            affine: to_rows(&affine),
            warp,
        }
    }

    /// The same subject with the head placed differently in the scanner: `pose · A`.
    pub fn repositioned(&self, pose: &Matrix4<f64>) -> Self {
        Self {
            affine: to_rows(&(pose * self.affine_matrix())),
            warp: self.warp.clone(),
        }
    }

    /// `A` as a matrix.
    pub fn affine_matrix(&self) -> Matrix4<f64> {
        Matrix4::from_fn(|r, c| self.affine[r][c])
    }

    /// Template world → native world.
    pub fn forward(&self, p: [f64; 3]) -> [f64; 3] {
        let u = self.warp.displacement(p);
        let q = self.affine_matrix() * Vector4::new(p[0] + u[0], p[1] + u[1], p[2] + u[2], 1.0);
        [q[0], q[1], q[2]]
    }

    /// Native world → template world: `p = w⁻¹(A⁻¹ q)`, the warp inverted by Newton's method on
    /// `p + u(p) = y` with the analytic Jacobian `I + Σ_k a_k (2π f_k)ᵀ cos(·)` (invertible, as
    /// the warp's Lipschitz bound is below 1); converges to 1e-6 mm in a few steps.
    pub fn inverse(&self, inv_affine: &Matrix4<f64>, q: [f64; 3]) -> [f64; 3] {
        let y = inv_affine * Vector4::new(q[0], q[1], q[2], 1.0);
        let y = Vector3::new(y[0], y[1], y[2]);
        let mut p = y;
        for _ in 0..12 {
            let mut r = p - y;
            let mut jac = Matrix3::identity();
            for ((a, f), ph) in self
                .warp
                .amplitude
                .iter()
                .zip(&self.warp.frequency)
                .zip(&self.warp.phase)
            {
                let arg = std::f64::consts::TAU * (f[0] * p[0] + f[1] * p[1] + f[2] * p[2]) + ph;
                let (s, c) = arg.sin_cos();
                for i in 0..3 {
                    r[i] += a[i] * s;
                    for j in 0..3 {
                        jac[(i, j)] += a[i] * std::f64::consts::TAU * f[j] * c;
                    }
                }
            }
            let step = jac.lu().solve(&r).unwrap_or(r);
            p -= step;
            if step.amax() < 1e-7 {
                break;
            }
        }
        [p[0], p[1], p[2]]
    }
}

/// A random rigid transform: rotations N(0, `deg`/2)° clamped to ±`deg`, translations likewise.
pub(crate) fn random_rigid(rng: &mut ChaCha8Rng, deg: f64, mm: f64) -> Matrix4<f64> {
    let mut draw = |lim: f64| -> f64 {
        let n = Normal::new(0.0, lim / 2.0).expect("positive sd");
        n.sample(rng).clamp(-lim, lim)
    };
    let (rx, ry, rz) = (
        draw(deg).to_radians(),
        draw(deg).to_radians(),
        draw(deg).to_radians(),
    );
    let t = Vector3::new(draw(mm), draw(mm), draw(mm));
    rigid_matrix([t[0], t[1], t[2], rx, ry, rz], [0.0; 3])
}

/// Rigid 4×4 from `[tx, ty, tz, rx, ry, rz]` (mm, rad; rotation `Rz·Ry·Rx`) about `centre`
/// (world mm): `q = R (p − c) + c + t`.
pub fn rigid_matrix(params: [f64; 6], centre: [f64; 3]) -> Matrix4<f64> {
    let r = Rotation3::from_euler_angles(params[3], params[4], params[5]);
    let c = Vector3::from(centre);
    let t = Vector3::new(params[0], params[1], params[2]) + c - r * c;
    let mut m = Matrix4::identity();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(r.matrix());
    m.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
    m
}

fn random_unit(rng: &mut ChaCha8Rng) -> [f64; 3] {
    let n = Normal::new(0.0, 1.0).expect("unit normal");
    let v = [n.sample(rng), n.sample(rng), n.sample(rng)];
    let l = norm(&v).max(1e-12);
    v.map(|x| x / l)
}

pub(crate) fn to_rows(m: &Matrix4<f64>) -> [[f64; 4]; 4] {
    std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn inverse_undoes_forward() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let t = SubjectTransform::random(&mut rng);
            assert!(t.warp.lipschitz_bound() < 0.9);
            let inv = t.affine_matrix().try_inverse().unwrap();
            for p in [[0.0, 0.0, 0.0], [40.0, -60.0, 30.0], [-55.0, 30.0, -20.0]] {
                let back = t.inverse(&inv, t.forward(p));
                for c in 0..3 {
                    assert!((back[c] - p[c]).abs() < 1e-4, "{p:?} -> {back:?}");
                }
            }
        }
    }

    #[test]
    fn rigid_matrix_rotates_about_centre() {
        let m = rigid_matrix(
            [0.0, 0.0, 0.0, 0.0, 0.0, std::f64::consts::FRAC_PI_2],
            [10.0, 0.0, 0.0],
        );
        let q = m * Vector4::new(20.0, 0.0, 0.0, 1.0);
        assert!((q[0] - 10.0).abs() < 1e-12 && (q[1] - 10.0).abs() < 1e-12);
    }
}
