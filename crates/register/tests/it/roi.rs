use cbflow_register::{labels_from_volume, roi_stats};
use cbflow_resources::{aal3_acc_regions, regions_from_label_table};

use crate::common::*;

#[test]
fn aal3_acc_labels_match_the_atlas_label_file() {
    let txt =
        std::fs::read_to_string(cbflow_testdata::resource("atlases/aal3/AAL3v1.nii.txt")).unwrap();
    let table = regions_from_label_table(&txt).unwrap();
    for r in aal3_acc_regions().iter().filter(|r| r.labels.len() == 1) {
        let row = table.iter().find(|t| t.labels == r.labels).unwrap();
        assert_eq!(row.name, r.name, "label {:?}", r.labels);
    }
    // on the 2 mm atlas, a map equal to 1000 + label gives each ACC region its label mean
    let atlas = load("atlases/aal3/AAL3v1.nii.gz");
    let labels = labels_from_volume(atlas.frame(0));
    let map = labels.mapv(|l| 1000.0 + l as f32);
    let stats = roi_stats(map.view(), labels.view(), &aal3_acc_regions(), None).unwrap();
    for s in &stats {
        assert!(s.n_voxels > 10, "{s:?}");
    }
    assert_eq!(stats[0].mean, 1151.0);
    assert_eq!(stats[1].median, 1152.0);
    let bil = &stats[2];
    let want = (1151.0 * stats[0].n_voxels as f64 + 1152.0 * stats[1].n_voxels as f64)
        / bil.n_voxels as f64;
    assert!(
        (bil.mean - want).abs() < 1e-9 && bil.n_voxels == stats[0].n_voxels + stats[1].n_voxels
    );
}
