//! The shuffles: sign flips or within-block permutations, exhaustive when few, seeded otherwise.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::types::Scheme;
use crate::error::{Result, check_len};

/// One shuffle of the rows: `W*_i = signs[i] · W_{perm[i]}` (`perm = None`: identity order).
#[derive(Debug, Clone, PartialEq)]
pub struct Shuffle {
    /// Row permutation, if any.
    pub perm: Option<Vec<u32>>,
    /// Sign (±1) per row.
    pub signs: Vec<f64>,
}

/// The shuffles [`permutation_test`](super::permutation_test) uses for `n` rows: identity first, then either all `2^n`
/// sign patterns (sign-flipping with `2^n ≤ n_perm`; returns `true`) or `n_perm` draws from a
/// ChaCha8 generator seeded with `seed`. Exposed so results can be reproduced independently.
pub fn draw_shuffles(
    n: usize,
    scheme: &Scheme,
    n_perm: usize,
    seed: u64,
) -> Result<(Vec<Shuffle>, bool)> {
    let identity = Shuffle {
        perm: None,
        signs: vec![1.0; n],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let random_signs = |rng: &mut ChaCha8Rng| -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        let mut word = 0u64;
        for i in 0..n {
            if i % 64 == 0 {
                word = rng.random::<u64>();
            }
            out.push(if (word >> (i % 64)) & 1 == 1 {
                -1.0
            } else {
                1.0
            });
        }
        out
    };
    let groups = |blocks: &[usize]| -> Result<Vec<Vec<u32>>> {
        check_len("exchangeability blocks", n, blocks.len())?;
        let mut labels: Vec<usize> = blocks.to_vec();
        labels.sort_unstable();
        labels.dedup();
        let mut g = vec![Vec::new(); labels.len()];
        for (i, b) in blocks.iter().enumerate() {
            let k = labels.binary_search(b).expect("label present");
            g[k].push(i as u32);
        }
        Ok(g)
    };
    let random_perm = |rng: &mut ChaCha8Rng, g: &[Vec<u32>]| -> Vec<u32> {
        let mut perm: Vec<u32> = (0..n as u32).collect();
        for members in g {
            // Fisher–Yates on the block's members
            let mut vals = members.clone();
            for i in (1..vals.len()).rev() {
                let j = rng.random_range(0..=i);
                vals.swap(i, j);
            }
            for (slot, v) in members.iter().zip(vals) {
                perm[*slot as usize] = v;
            }
        }
        perm
    };
    match scheme {
        Scheme::SignFlip => {
            if n < 63 && (1u64 << n) <= n_perm as u64 {
                let total = 1usize << n;
                let out = (0..total)
                    .map(|j| Shuffle {
                        perm: None,
                        signs: (0..n)
                            .map(|i| if (j >> i) & 1 == 1 { -1.0 } else { 1.0 })
                            .collect(),
                    })
                    .collect();
                Ok((out, true))
            } else {
                let mut out = vec![identity];
                for _ in 0..n_perm {
                    out.push(Shuffle {
                        perm: None,
                        signs: random_signs(&mut rng),
                    });
                }
                Ok((out, false))
            }
        }
        Scheme::WithinBlocks { blocks } => {
            let g = groups(blocks)?;
            let mut out = vec![identity];
            for _ in 0..n_perm {
                out.push(Shuffle {
                    perm: Some(random_perm(&mut rng, &g)),
                    signs: vec![1.0; n],
                });
            }
            Ok((out, false))
        }
        Scheme::WithinBlocksSignFlip { blocks } => {
            let g = groups(blocks)?;
            let mut out = vec![identity];
            for _ in 0..n_perm {
                let perm = random_perm(&mut rng, &g);
                out.push(Shuffle {
                    perm: Some(perm),
                    signs: random_signs(&mut rng),
                });
            }
            Ok((out, false))
        }
    }
}
