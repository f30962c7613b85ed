//! The cells of the group tables: numbers as written (five decimals, `n/a` for what is not
//! finite), the columns of a one-sample t test, and the error of a table step. The lowest
//! module of the group tables: it depends on no other.

use crate::Error;

/// A table value: five decimals, `n/a` when not finite.
pub(super) fn f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.5}")
    } else {
        "n/a".into()
    }
}

/// The names of [`t_test_cells`]' columns.
pub(crate) const T_TEST_COLUMNS: [&str; 7] = [
    "mean_difference",
    "ci95_low",
    "ci95_high",
    "t",
    "df",
    "p",
    "cohens_dz",
];

/// The columns of a one-sample t test in the tables' order (mean, 95 % CI, t, df, p, Cohen's
/// d_z), each written by `f`.
pub(crate) fn t_test_cells(t: &cbflow_stats::TTest, f: impl Fn(f64) -> String) -> [String; 7] {
    [t.mean, t.ci95.0, t.ci95.1, t.t, t.df, t.p, t.cohens_dz].map(f)
}

/// A missing value in a table.
pub(super) const NA: &str = "n/a";

/// An error of the group tables, naming the output directory.
pub(super) fn step_err(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "group tables",
        message: e.to_string(),
    }
}
