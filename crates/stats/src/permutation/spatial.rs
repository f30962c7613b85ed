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
    pub(super) tmp: Vec<f64>,
    pub(super) parent: Vec<u32>,
    pub(super) size: Vec<u32>,
}

impl Scratch {
    pub(super) fn new(nv: usize, tfce: Option<&Neighbours>) -> Self {
        Self {
            ws: tfce.map(TfceWorkspace::new),
            pos: vec![0.0; nv],
            tmp: vec![0.0; nv],
            parent: vec![0; nv],
            size: vec![0; nv],
        }
    }
}

impl Spatial<'_> {
    /// Hands the TFCE map of `t` (tail convention: signed, positive part minus negative part,
    /// for two-sided) to `emit(v, value)`, voxel by voxel in column order, and returns the max
    /// cluster size.
    pub(super) fn run(
        &self,
        t: &[f64],
        sc: &mut Scratch,
        mut emit: impl FnMut(usize, f64),
    ) -> usize {
        let nv = t.len();
        if let Some((p, dh, nb)) = self.tfce {
            let Scratch { ws, pos, .. } = sc;
            let ws = ws.as_mut().expect("scratch made with the TFCE neighbours");
            match self.tail {
                Tail::Positive => tfce_positive_into(t, false, nb, p.e, p.h, dh, ws, emit),
                Tail::Negative => tfce_positive_into(t, true, nb, p.e, p.h, dh, ws, emit),
                Tail::TwoSided => {
                    tfce_positive_into(t, false, nb, p.e, p.h, dh, ws, |v, x| pos[v] = x);
                    tfce_positive_into(t, true, nb, p.e, p.h, dh, ws, |v, x| emit(v, pos[v] - x));
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
