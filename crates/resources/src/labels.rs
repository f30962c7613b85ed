//! Atlas label tables: the regions of an atlas from its label table, and the default regions of
//! the ketamine study (AAL3's anterior cingulate).

use cbflow_register::Region;

use crate::error::{Error, Result};

/// AAL3v1 anterior cingulate regions (labels 151–156 of `AAL3v1.nii.txt`): `ACC_sub`, `ACC_pre`,
/// `ACC_sup`, each left (odd label), right (even label) and bilateral (both); nine regions in the
/// order sub L, R, bilateral, pre L, R, bilateral, sup L, R, bilateral. Rolls et al. 2020,
/// NeuroImage 206:116189.
pub fn aal3_acc_regions() -> Vec<Region> {
    let mut out = Vec::new();
    for (part, left) in [("sub", 151), ("pre", 153), ("sup", 155)] {
        out.push(Region::new(format!("ACC_{part}_L"), vec![left]));
        out.push(Region::new(format!("ACC_{part}_R"), vec![left + 1]));
        out.push(Region::new(format!("ACC_{part}"), vec![left, left + 1]));
    }
    out
}

/// Regions (one per label) from a label table: either a TSV with a header line containing
/// `index` and `name`/`label` columns (BIDS `dseg.tsv`), or whitespace-separated lines
/// `index name [...]` (the AAL `.nii.txt` form). Label 0 (background) is skipped.
pub fn regions_from_label_table(text: &str) -> Result<Vec<Region>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .peekable();
    let (mut idx_col, mut name_col, mut tsv) = (0usize, 1usize, false);
    if let Some((_, first)) = lines.peek() {
        let cols: Vec<&str> = first.split('\t').map(|c| c.trim()).collect();
        if cols.iter().any(|c| c.eq_ignore_ascii_case("index")) {
            idx_col = cols
                .iter()
                .position(|c| c.eq_ignore_ascii_case("index"))
                .expect("checked");
            name_col = cols
                .iter()
                .position(|c| c.eq_ignore_ascii_case("name") || c.eq_ignore_ascii_case("label"))
                .ok_or_else(|| {
                    Error::LabelTable(format!(
                        "header {first:?}: needs a 'name' or 'label' column"
                    ))
                })?;
            tsv = true;
            lines.next();
        }
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let cols: Vec<&str> = if tsv {
            line.split('\t').map(|c| c.trim()).collect()
        } else {
            line.split_whitespace().collect()
        };
        let bad = || {
            Error::LabelTable(format!(
                "line {}: {line:?}: expected an integer index and a name",
                n + 1
            ))
        };
        let idx: i32 = cols
            .get(idx_col)
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        let name = cols.get(name_col).ok_or_else(bad)?.to_string();
        if idx != 0 {
            out.push(Region::new(name, vec![idx]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_tables_parse_both_forms() {
        let tsv = "index\tlabel\n1\tPrecentral_L_1\n151\tACC_sub_L_151\n";
        let r = regions_from_label_table(tsv).unwrap();
        assert_eq!(r[1], Region::new("ACC_sub_L_151", vec![151]));
        let txt = "151 ACC_sub_L 151\n152 ACC_sub_R 152\n";
        let r = regions_from_label_table(txt).unwrap();
        assert_eq!(r[0], Region::new("ACC_sub_L", vec![151]));
        assert!(regions_from_label_table("x y\n").is_err());
    }
}
