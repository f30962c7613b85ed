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

/// Regions (one per label) from a label table in any of three forms: a TSV with a header line
/// containing `index` and `name`/`label` columns (BIDS `dseg.tsv`); whitespace-separated lines
/// `index name [...]` (the AAL `.nii.txt` form); or the Connectome Workbench label list, a name
/// line followed by an `index r g b a` line (the Schaefer and Tian atlases' `_label.txt`).
/// Label 0 (background) is skipped. Names are as written (see [`region_name`]).
pub fn regions_from_label_table(text: &str) -> Result<Vec<Region>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .peekable();
    let starts_with_int = |l: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|t| t.parse::<i32>().is_ok())
    };
    if let Some(&(_, first)) = lines.peek()
        && !starts_with_int(first)
        && !first
            .split('\t')
            .any(|c| c.trim().eq_ignore_ascii_case("index"))
    {
        return workbench_label_list(lines.collect());
    }
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

/// The Workbench label list: name line, then `index r g b a`.
fn workbench_label_list(lines: Vec<(usize, &str)>) -> Result<Vec<Region>> {
    let mut out = Vec::new();
    for pair in lines.chunks(2) {
        let (n, name) = pair[0];
        let Some(&(m, values)) = pair.get(1) else {
            return Err(Error::LabelTable(format!(
                "line {}: {name:?} has no `index r g b a` line after it",
                n + 1
            )));
        };
        let idx: i32 = values
            .split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                Error::LabelTable(format!(
                    "line {}: {values:?}: expected `index r g b a` after the name {name:?}",
                    m + 1
                ))
            })?;
        if idx != 0 {
            out.push(Region::new(name.trim(), vec![idx]));
        }
    }
    Ok(out)
}

/// A label's name as a region name (letters, digits and `_`: a TSV column and an entity-safe
/// row name): every other character becomes `_`, runs of `_` are collapsed and trimmed, and a
/// name that would start with a digit is prefixed with `label_` (an empty one is `label`).
/// `7Networks_LH_Vis_1` → `label_7Networks_LH_Vis_1`, `HIP-rh` → `HIP_rh`,
/// `3rd Ventricle` → `label_3rd_Ventricle`.
pub fn region_name(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && (s.is_empty() || s.ends_with('_'))) {
            s.push(c);
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s.is_empty() {
        return "label".into();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "label_");
    }
    s
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
        // the Workbench label list of the Schaefer/Tian atlases
        let wb = "HIP-rh\n1 171 243 85 255\n7Networks_LH_Vis_1\n17 120 18 134 0\n";
        let r = regions_from_label_table(wb).unwrap();
        assert_eq!(
            r,
            [
                Region::new("HIP-rh", vec![1]),
                Region::new("7Networks_LH_Vis_1", vec![17])
            ]
        );
        let e = regions_from_label_table("HIP-rh\n1 171 243 85 255\nAMY-rh\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn region_names_are_letters_digits_and_underscores() {
        assert_eq!(region_name("HIP-rh"), "HIP_rh");
        assert_eq!(
            region_name("7Networks_LH_Vis_1"),
            "label_7Networks_LH_Vis_1"
        );
        assert_eq!(region_name(" 3rd  Ventricle "), "label_3rd_Ventricle");
        assert_eq!(region_name("Frontal_Sup_2_L"), "Frontal_Sup_2_L");
        assert_eq!(region_name("--"), "label");
    }
}
