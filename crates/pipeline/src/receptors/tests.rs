use cbflow_resources::ReceptorEntry;

use super::load::*;
use crate::template::Template;
use cbflow_resources::Role;

fn entry(name: &str, file: &str) -> ReceptorEntry {
    ReceptorEntry {
        name: name.into(),
        target: name.into(),
        tracer: "t".into(),
        file: file.into(),
        citation: "c".into(),
        licence: "l".into(),
        role: Role::Receptor,
        notes: None,
    }
}

/// Pearson correlation of `a` with `b` shifted by `d` voxels (b[i + d]) over voxels valid
/// in both.
fn shifted_r(a: &LoadedMap, b: &LoadedMap, d: [isize; 3], mirror: bool) -> f64 {
    let (nx, ny, nz) = a.z.dim();
    let (mut x, mut y) = (vec![], vec![]);
    for ((i, j, k), &va) in a.z.indexed_iter() {
        if !a.valid[(i, j, k)] {
            continue;
        }
        let ii = if mirror {
            nx as isize - 1 - i as isize
        } else {
            i as isize
        } + d[0];
        let jj = j as isize + d[1];
        let kk = k as isize + d[2];
        if ii < 0 || jj < 0 || kk < 0 || ii >= nx as isize || jj >= ny as isize || kk >= nz as isize
        {
            continue;
        }
        let q = (ii as usize, jj as usize, kk as usize);
        if b.valid[q] {
            x.push(f64::from(va));
            y.push(f64::from(b.z[q]));
        }
    }
    cbflow_receptor::pearson(&x, &y).unwrap()
}

/// Each awkward kind of file (1 / 1.5 / 2 / 3 mm grids, LAS and RAS storage, big-endian
/// float32, int16/int32 with scl_slope, constant non-zero and negative backgrounds) read and
/// resampled to the MNI 2 mm grid agrees with a map of the same target from another grid and
/// file, best at zero shift: a misplacement by one voxel (2 mm) along any axis lowers the
/// agreement.
#[test]
fn maps_of_every_kind_are_placed_right() {
    let root = cbflow_testdata::resources_for(&["MNI152NLin6Asym"]);
    let tpl = Template::mni(&root).unwrap();
    // (map, reference of the same target, minimum r, same data in another file?)
    let pairs = [
        // 1.5 mm LAS int16 + scl_slope vs its JuSpace 3 mm int32 copy (same data)
        (
            "pet/hansen_receptors/MU_carfentanil_hc39_turtonen.nii.gz",
            "pet/juspace_v1.5/MU_carfentanil_hc39_turtonen.nii.gz",
            0.99,
            true,
        ),
        // 2 mm LAS float32, negative background vs its 3 mm JuSpace copy (same data)
        (
            "pet/opioid_shokrikojori2022/KOR.nii.gz",
            "pet/juspace_v1.5/KappaOp_LY2795050_hc10_ShokriKojori.nii.gz",
            0.93,
            true,
        ),
        // 1 mm RAS (MNI152NLin2009cAsym grid), negative background vs 3 mm JuSpace version
        (
            "pet/hansen_receptorvar/NMDA_ge179_hc29_galovic_mean.nii.gz",
            "pet/juspace_v1.5/NMDA_ge179_29hc_galovic2021.nii.gz",
            0.7,
            false,
        ),
        // 1 mm LAS GABA-A a5 component vs 2 mm LAS total Ro15-4513 (different cohorts and components)
        (
            "pet/hansen_receptorvar/GABAa5_ro154513_hc23_chang_mean.nii.gz",
            "pet/lukow2022_ro154513/GABAa5_Ro15_10hc_lukow.nii.gz",
            0.55,
            false,
        ),
        // big-endian float32, tightly masked, vs int32 with -0.003 background (other cohort)
        (
            "pet/juspace_v1.5/GABAa_FLUMAZENIL_c11.nii.gz",
            "pet/juspace_v1.5/GABAa_flumazenil_hc16_norgaard.nii.gz",
            0.7,
            false,
        ),
        // 2 mm MOR (N = 10) vs 3 mm MOR (N = 204)
        (
            "pet/opioid_shokrikojori2022/MOR.nii.gz",
            "pet/juspace_v1.5/MU_CARFENTANIL_c11.nii.gz",
            0.7,
            false,
        ),
    ];
    let maps: Vec<&str> = pairs.iter().flat_map(|p| [p.0, p.1]).collect();
    let root = cbflow_testdata::resource_root(&maps);
    for (a, b, min_r, same_data) in pairs {
        let ma = load_receptor_map(&entry("a", a), &root, &tpl).unwrap();
        let mb = load_receptor_map(&entry("b", b), &root, &tpl).unwrap();
        // the 1 mm NMDA map lies on the MNI152NLin2009cAsym grid and misses some cortex edge
        assert!(
            ma.coverage > 0.7 && mb.coverage > 0.7,
            "{a}: coverage {} / {}",
            ma.coverage,
            mb.coverage
        );
        let r0 = shifted_r(&ma, &mb, [0, 0, 0], false);
        let rm = shifted_r(&ma, &mb, [0, 0, 0], true);
        // same data: one voxel (2 mm) off is worse; different data: two voxels (4 mm)
        let step = if same_data { 1 } else { 2 };
        let mut shifts = vec![];
        for ax in 0..3 {
            for s in [-step, step] {
                let mut d = [0isize; 3];
                d[ax] = s;
                shifts.push(shifted_r(&ma, &mb, d, false));
            }
        }
        eprintln!(
            "{a}: r {r0:.4}, mirrored {rm:.4}, shifted by {step} {shifts:.4?}, coverage {:.3}",
            ma.coverage
        );
        assert!(r0 >= min_r, "{a} vs {b}: r = {r0}");
        assert!(
            shifts.iter().all(|&s| s < r0),
            "{a}: a shift fits better: {shifts:?} vs {r0}"
        );
        if same_data {
            // left and right are not swapped (the maps are not symmetric enough to hide it)
            assert!(r0 - rm > 0.02, "{a}: mirrored {rm} vs {r0}");
        }
    }
}
