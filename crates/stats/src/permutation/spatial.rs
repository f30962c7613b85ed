//! TFCE and cluster extent of each shuffle's map, for their maximum-statistic nulls.

use super::types::Tail;
use crate::geometry::{Neighbours, max_cluster_size};
use crate::tfce::{
    TfceParams, TfceWorkspace, tfce_of_one_byte_levels, tfce_positive_into, tile_levels,
};

/// Spatial statistics of one t map: TFCE map (signed for two-sided) and max cluster size.
pub(super) struct Spatial<'a> {
    pub(super) tail: Tail,
    pub(super) tfce: Option<(TfceParams, f64, &'a Neighbours)>,
    pub(super) cluster: Option<(f64, &'a Neighbours)>,
}

pub(super) struct Scratch {
    pub(super) ws: Option<TfceWorkspace>,
    pub(super) pos: Vec<f64>,
    pub(super) parent: Vec<u32>,
    pub(super) size: Vec<u32>,
}

impl Scratch {
    pub(super) fn new(nv: usize, tfce: Option<&Neighbours>) -> Self {
        Self {
            ws: tfce.map(TfceWorkspace::new),
            pos: vec![0.0; nv],
            parent: vec![0; nv],
            size: vec![0; nv],
        }
    }
}

/// The one-byte TFCE levels by rank of a block of shuffles' maps (the positive part's, and the
/// negative part's where the tail needs it), filled tile by tile as the maps are computed, and
/// each map's largest level (uncut); with clusters, each voxel's byte of `t ≥ threshold` (bit 0)
/// and `−t ≥ threshold` (bit 1).
#[derive(Default)]
pub(super) struct BlockLevels {
    nv: usize,
    pos: Vec<u8>,
    neg: Vec<u8>,
    kpos: Vec<usize>,
    kneg: Vec<usize>,
    above: Vec<u8>,
}

impl BlockLevels {
    /// Empties the levels for `block` maps of `nv` voxels.
    pub(super) fn reset(&mut self, block: usize, nv: usize, spatial: &Spatial<'_>) {
        self.nv = nv;
        self.pos.resize(block * nv, 0);
        if spatial.tail != Tail::Positive {
            self.neg.resize(block * nv, 0);
        }
        if spatial.cluster.is_some() {
            self.above.resize(block * nv, 0);
        }
        self.kpos.clear();
        self.kpos.resize(block, 0);
        self.kneg.clear();
        self.kneg.resize(block, 0);
    }
}

impl Spatial<'_> {
    /// Whether [`Self::tile_levels`] and [`Self::run_levels`] can stand in for [`Self::run`]:
    /// TFCE (and clusters or not) on a mask whose columns are in rank order.
    pub(super) fn levels_suffice(&self) -> bool {
        self.tfce
            .is_some_and(|(_, _, nb)| nb.column_by_rank.is_none())
    }

    /// The levels of map `b`'s tile `t` (columns `v0..`) into `bl`.
    pub(super) fn tile_levels(&self, bl: &mut BlockLevels, b: usize, v0: usize, t: &[f64]) {
        let (_, dh, _) = self.tfce.expect("TFCE");
        let range = b * bl.nv + v0..b * bl.nv + v0 + t.len();
        if self.tail != Tail::Negative {
            let k = tile_levels(t, 1.0, dh, &mut bl.pos[range.clone()]);
            bl.kpos[b] = bl.kpos[b].max(k);
        }
        if self.tail != Tail::Positive {
            let k = tile_levels(t, -1.0, dh, &mut bl.neg[range.clone()]);
            bl.kneg[b] = bl.kneg[b].max(k);
        }
        if let Some((thr, _)) = self.cluster {
            for (a, &x) in bl.above[range].iter_mut().zip(t) {
                *a = u8::from(x >= thr) | u8::from(-x >= thr) << 1;
            }
        }
    }

    /// [`Self::run`] on map `b` of `bl`, returning the largest |TFCE| handed to `emit` (at
    /// least 0) and the max cluster size; `None` where its levels do not fit one byte (then
    /// [`Self::run`] on its t map).
    pub(super) fn run_levels(
        &self,
        bl: &BlockLevels,
        b: usize,
        sc: &mut Scratch,
        emit: impl FnMut(usize, f64),
    ) -> Option<(f64, usize)> {
        let mt = self.tfce_of_levels(bl, b, sc, emit)?;
        let Some((_, nb)) = self.cluster else {
            return Some((mt, 0));
        };
        let above = &bl.above[b * bl.nv..(b + 1) * bl.nv];
        let maxc = self.largest_cluster(nb, sc, |v, negative| {
            above[v] & (1 << u8::from(negative)) != 0
        });
        Some((mt, maxc))
    }

    /// The size of the largest cluster of the tail's voxels, `passes(v, negative)` telling
    /// whether voxel `v` passes the threshold on the positive or the negative side.
    fn largest_cluster(
        &self,
        nb: &Neighbours,
        sc: &mut Scratch,
        passes: impl Fn(usize, bool) -> bool,
    ) -> usize {
        let mut largest = |negative: bool| {
            max_cluster_size(|v| passes(v, negative), nb, &mut sc.parent, &mut sc.size)
        };
        match self.tail {
            Tail::Positive => largest(false),
            Tail::Negative => largest(true),
            Tail::TwoSided => largest(true).max(largest(false)),
        }
    }

    fn tfce_of_levels(
        &self,
        bl: &BlockLevels,
        b: usize,
        sc: &mut Scratch,
        mut emit: impl FnMut(usize, f64),
    ) -> Option<f64> {
        let (p, dh, nb) = self.tfce.expect("TFCE");
        let one_byte = |k: usize| k <= usize::from(u8::MAX);
        if !(one_byte(bl.kpos[b]) && one_byte(bl.kneg[b])) {
            return None;
        }
        let at = b * bl.nv..(b + 1) * bl.nv;
        let Scratch { ws, pos, .. } = sc;
        let ws = ws.as_mut().expect("scratch made with the TFCE neighbours");
        let (pl, nl) = (&bl.pos[..], &bl.neg[..]);
        // where one part of a two-sided map is not 0 the other is: |pos − neg| is one of them
        Some(match self.tail {
            Tail::Positive => {
                tfce_of_one_byte_levels(&pl[at], bl.kpos[b], nb, p.e, p.h, dh, ws, emit)
            }
            Tail::Negative => {
                tfce_of_one_byte_levels(&nl[at], bl.kneg[b], nb, p.e, p.h, dh, ws, emit)
            }
            Tail::TwoSided => {
                let (e, h) = (p.e, p.h);
                let up = tfce_of_one_byte_levels(
                    &pl[at.clone()],
                    bl.kpos[b],
                    nb,
                    e,
                    h,
                    dh,
                    ws,
                    |v, x| pos[v] = x,
                );
                let down =
                    tfce_of_one_byte_levels(&nl[at], bl.kneg[b], nb, e, h, dh, ws, |v, x| {
                        emit(v, pos[v] - x)
                    });
                up.max(down)
            }
        })
    }

    /// Hands the TFCE map of `t` (tail convention: signed, positive part minus negative part,
    /// for two-sided) to `emit(v, value)`, voxel by voxel in column order, and returns the
    /// largest |TFCE| handed over (0 without TFCE) and the max cluster size.
    pub(super) fn run(
        &self,
        t: &[f64],
        sc: &mut Scratch,
        mut emit: impl FnMut(usize, f64),
    ) -> (f64, usize) {
        let mut mt = 0.0;
        if let Some((p, dh, nb)) = self.tfce {
            let Scratch { ws, pos, .. } = sc;
            let ws = ws.as_mut().expect("scratch made with the TFCE neighbours");
            // as in `run_levels`: |pos − neg| is one of them
            mt = match self.tail {
                Tail::Positive => tfce_positive_into(t, false, nb, p.e, p.h, dh, ws, emit),
                Tail::Negative => tfce_positive_into(t, true, nb, p.e, p.h, dh, ws, emit),
                Tail::TwoSided => {
                    let up = tfce_positive_into(t, false, nb, p.e, p.h, dh, ws, |v, x| pos[v] = x);
                    let down = tfce_positive_into(t, true, nb, p.e, p.h, dh, ws, |v, x| {
                        emit(v, pos[v] - x)
                    });
                    up.max(down)
                }
            };
        }
        let maxc = match self.cluster {
            Some((thr, nb)) => self.largest_cluster(nb, sc, |v, negative| {
                (if negative { -t[v] } else { t[v] }) >= thr
            }),
            None => 0,
        };
        (mt, maxc)
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PerShuffle {
    pub(super) index: usize,
    pub(super) max_t: f64,
    pub(super) max_tfce: f64,
    pub(super) max_cluster: usize,
}
