//! TFCE and cluster extent of each shuffle's map, for their maximum-statistic nulls.

use super::types::Tail;
use crate::geometry::{Neighbours, max_cluster_size};
use crate::tfce::{TfceParams, TfceWorkspace, tfce_positive_into};

/// Spatial statistics of one t map: TFCE map (signed for two-sided) and max cluster size.
pub(super) struct Spatial<'a> {
    pub(super) tail: Tail,
    pub(super) tfce: Option<(TfceParams, f64, &'a Neighbours)>,
    pub(super) cluster: Option<(f64, &'a Neighbours)>,
}

pub(super) struct Scratch {
    pub(super) ws: Option<TfceWorkspace>,
    pub(super) pos: Vec<f64>,
    pub(super) neg: Vec<f64>,
    pub(super) enh: Vec<f64>,
    pub(super) tmp: Vec<f64>,
    pub(super) parent: Vec<u32>,
    pub(super) size: Vec<u32>,
}

impl Scratch {
    pub(super) fn new(nv: usize, tfce: Option<&Neighbours>) -> Self {
        Self {
            ws: tfce.map(TfceWorkspace::new),
            pos: vec![0.0; nv],
            neg: vec![0.0; nv],
            enh: vec![0.0; nv],
            tmp: vec![0.0; nv],
            parent: vec![0; nv],
            size: vec![0; nv],
        }
    }
}

impl Spatial<'_> {
    /// Fills `sc.enh` with the TFCE map of `t` (tail convention) and returns the max cluster size.
    pub(super) fn run(&self, t: &[f64], sc: &mut Scratch) -> usize {
        let nv = t.len();
        if let Some((p, dh, nb)) = self.tfce {
            let ws = sc
                .ws
                .as_mut()
                .expect("scratch made with the TFCE neighbours");
            match self.tail {
                Tail::Positive => tfce_positive_into(t, nb, p.e, p.h, dh, ws, &mut sc.enh),
                Tail::Negative => {
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    tfce_positive_into(&sc.tmp, nb, p.e, p.h, dh, ws, &mut sc.enh)
                }
                Tail::TwoSided => {
                    tfce_positive_into(t, nb, p.e, p.h, dh, ws, &mut sc.pos);
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    tfce_positive_into(&sc.tmp, nb, p.e, p.h, dh, ws, &mut sc.neg);
                    for v in 0..nv {
                        sc.enh[v] = sc.pos[v] - sc.neg[v];
                    }
                }
            }
        }
        if let Some((thr, nb)) = self.cluster {
            match self.tail {
                Tail::Positive => max_cluster_size(t, thr, nb, &mut sc.parent, &mut sc.size),
                Tail::Negative | Tail::TwoSided => {
                    for v in 0..nv {
                        sc.tmp[v] = -t[v];
                    }
                    let neg = max_cluster_size(&sc.tmp, thr, nb, &mut sc.parent, &mut sc.size);
                    if self.tail == Tail::TwoSided {
                        neg.max(max_cluster_size(t, thr, nb, &mut sc.parent, &mut sc.size))
                    } else {
                        neg
                    }
                }
            }
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PerShuffle {
    pub(super) index: usize,
    pub(super) max_t: f64,
    pub(super) max_tfce: f64,
    pub(super) max_cluster: usize,
}
