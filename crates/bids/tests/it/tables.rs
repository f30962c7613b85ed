//! participants.tsv, sessions.tsv and phenotype/*.tsv through the layout.

use cbflow_bids::Layout;

use crate::{put, put_description};

#[test]
fn participants_sessions_phenotype() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(
        r,
        "participants.tsv",
        "participant_id\tage\tsex\nsub-01\t34\tF\nsub-02\tn/a\tM\n",
    );
    put(
        r,
        "sub-01/sub-01_sessions.tsv",
        "session_id\tacq_time\tdrug\nses-nal\t2024-01-01T10:00:00\tnaltrexone\nses-pla\t2024-01-08T10:00:00\tplacebo\n",
    );
    put(
        r,
        "phenotype/madrs.tsv",
        "participant_id\tsession_id\tmadrs_pre\tmadrs_post\nsub-01\tses-nal\t30\t12\nsub-01\tses-pla\t28\tn/a\n",
    );
    put(
        r,
        "phenotype/cadss.tsv",
        "participant_id\tcadss\nsub-01\t1O\n",
    );
    put(r, "sub-01/ses-nal/anat/sub-01_ses-nal_T1w.nii.gz", "");
    let layout = Layout::index(r).unwrap();

    let p = layout.participants().unwrap().unwrap();
    assert_eq!(p.column("participant_id").unwrap(), ["sub-01", "sub-02"]);
    assert_eq!(p.f64_column("age").unwrap(), [Some(34.0), None]);
    assert!(
        p.f64_column("sex")
            .unwrap_err()
            .to_string()
            .contains("row 1")
    );

    let s = layout.sessions_table("01").unwrap().unwrap();
    assert_eq!(
        s.str_column("drug").unwrap(),
        [Some("naltrexone"), Some("placebo")]
    );
    assert!(layout.sessions_table("02").unwrap().is_none());
    assert!(layout.sessions_table("../x").is_err());

    let ph = layout.phenotype().unwrap();
    assert_eq!(ph.keys().collect::<Vec<_>>(), ["cadss", "madrs"]);
    assert_eq!(
        ph["madrs"].f64_column("madrs_post").unwrap(),
        [Some(12.0), None]
    );
    // a letter O instead of a zero: error names file, column, row and value
    let e = ph["cadss"].f64_column("cadss").unwrap_err().to_string();
    assert!(
        e.contains("cadss.tsv")
            && e.contains("\"cadss\"")
            && e.contains("row 1")
            && e.contains("1O"),
        "{e}"
    );
}

#[test]
fn ragged_participants_row_is_an_error_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(
        r,
        "participants.tsv",
        "participant_id\tage\nsub-01\t34\nsub-02\n",
    );
    let e = Layout::index(r)
        .unwrap()
        .participants()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("participants.tsv") && e.contains("line 3"),
        "{e}"
    );
}
