//! BIDS tabular files (`.tsv`): tab-separated, a header row, `n/a` for missing values.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A TSV table: column names and rows of strings, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The file the table was read from (empty for a table built in memory).
    pub path: PathBuf,
    /// Column names from the header row.
    pub columns: Vec<String>,
    /// Rows; each has exactly `columns.len()` cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table built in memory; fails when a row's width differs from the header's.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<String>>) -> Result<Self> {
        let t = Self {
            path: PathBuf::new(),
            columns,
            rows,
        };
        for (i, r) in t.rows.iter().enumerate() {
            if r.len() != t.columns.len() {
                return Err(t.err(format!(
                    "row {} has {} cells, the header has {} columns",
                    i + 1,
                    r.len(),
                    t.columns.len()
                )));
            }
        }
        Ok(t)
    }

    fn err(&self, message: String) -> Error {
        Error::Table {
            path: self.path.clone(),
            message,
        }
    }

    /// Reads a BIDS TSV file: tab-separated, no quoting, a header row required, `\n` or `\r\n`
    /// line endings, blank lines ignored. A row with a different number of cells from the header
    /// is an error naming its line number (the header is line 1).
    pub fn read_tsv(path: &Path) -> Result<Table> {
        let bytes = std::fs::read(path).map_err(crate::error::io_err(path))?;
        Self::parse_tsv(&bytes, path)
    }

    /// Parses TSV bytes as [`Table::read_tsv`] does; `path` is used in error messages.
    pub fn parse_tsv(bytes: &[u8], path: &Path) -> Result<Table> {
        let err = |message: String| Error::Table {
            path: path.to_path_buf(),
            message,
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .has_headers(false)
            .flexible(true)
            .quoting(false)
            .from_reader(bytes);
        let mut columns: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| err(format!("cannot read TSV: {e}")))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let cells: Vec<String> = rec.iter().map(str::to_string).collect();
            if cells.len() == 1 && cells[0].trim().is_empty() {
                continue; // blank line
            }
            match &columns {
                None => {
                    if let Some(i) = cells.iter().position(|c| c.trim().is_empty()) {
                        return Err(err(format!("header column {} has an empty name", i + 1)));
                    }
                    columns = Some(cells);
                }
                Some(cols) => {
                    if cells.len() != cols.len() {
                        return Err(err(format!(
                            "line {line}: {} cells, but the header has {} columns",
                            cells.len(),
                            cols.len()
                        )));
                    }
                    rows.push(cells);
                }
            }
        }
        let columns = columns.ok_or_else(|| err("empty file: a header row is required".into()))?;
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            rows,
        })
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// Index of column `name`, if present.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cells of column `name`, one per row; an error names the file and the column.
    pub fn column(&self, name: &str) -> Result<Vec<&str>> {
        let i = self.column_index(name).ok_or_else(|| {
            self.err(format!(
                "no column {name:?} (columns: {})",
                self.columns.join(", ")
            ))
        })?;
        Ok(self.rows.iter().map(|r| r[i].as_str()).collect())
    }

    /// Column `name` as numbers: `n/a` (or an empty cell) → `None`; anything else that is not
    /// a number is an error naming the file, column and row (1-based data row).
    pub fn f64_column(&self, name: &str) -> Result<Vec<Option<f64>>> {
        self.column(name)?
            .into_iter()
            .enumerate()
            .map(|(r, s)| {
                let s = s.trim();
                if s == "n/a" || s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>().map(Some).map_err(|_| {
                    self.err(format!(
                        "column {name:?}, row {}: {s:?} is not a number",
                        r + 1
                    ))
                })
            })
            .collect()
    }

    /// Column `name` as strings with `n/a` → `None`.
    pub fn str_column(&self, name: &str) -> Result<Vec<Option<&str>>> {
        Ok(self
            .column(name)?
            .into_iter()
            .map(|s| (s != "n/a").then_some(s))
            .collect())
    }

    /// The row whose cell in `key_column` equals `key` (e.g. `participant_id` = `sub-01`).
    pub fn row_by(&self, key_column: &str, key: &str) -> Result<Option<&[String]>> {
        let i = self.column_index(key_column).ok_or_else(|| {
            self.err(format!(
                "no column {key_column:?} (columns: {})",
                self.columns.join(", ")
            ))
        })?;
        Ok(self.rows.iter().find(|r| r[i] == key).map(Vec::as_slice))
    }

    /// The table as TSV text: header, then rows, `\n` line endings. Cells must not contain tabs
    /// or newlines (an error names the row and column).
    pub fn to_tsv(&self) -> Result<String> {
        let mut s = String::new();
        for (r, row) in std::iter::once(&self.columns)
            .chain(self.rows.iter())
            .enumerate()
        {
            if row.len() != self.columns.len() {
                return Err(self.err(format!("row {r} has {} cells", row.len())));
            }
            for (c, cell) in row.iter().enumerate() {
                if cell.contains(['\t', '\n', '\r']) {
                    return Err(self.err(format!(
                        "row {r}, column {:?}: a cell contains a tab or newline",
                        self.columns[c]
                    )));
                }
                if c > 0 {
                    s.push('\t');
                }
                s.push_str(cell);
            }
            s.push('\n');
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_blank_lines_and_na() {
        let t = Table::parse_tsv(
            b"participant_id\tage\r\nsub-01\t31\r\nsub-02\tn/a\r\n\r\n",
            Path::new("p.tsv"),
        )
        .unwrap();
        assert_eq!(t.columns, ["participant_id", "age"]);
        assert_eq!(t.f64_column("age").unwrap(), [Some(31.0), None]);
        assert_eq!(
            t.row_by("participant_id", "sub-02").unwrap().unwrap()[1],
            "n/a"
        );
        let back = Table::parse_tsv(t.to_tsv().unwrap().as_bytes(), Path::new("q.tsv")).unwrap();
        assert_eq!(back.rows, t.rows);
    }

    #[test]
    fn errors_name_file_row_column() {
        let e = Table::parse_tsv(b"a\tb\n1\t2\n3\n", Path::new("x.tsv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.tsv") && e.contains("line 3"), "{e}");
        let t = Table::parse_tsv(b"a\tb\n1\t2\n3\tfoo\n", Path::new("y.tsv")).unwrap();
        let e = t.f64_column("b").unwrap_err().to_string();
        assert!(
            e.contains("y.tsv") && e.contains("\"b\"") && e.contains("row 2") && e.contains("foo"),
            "{e}"
        );
        assert!(
            t.column("c")
                .unwrap_err()
                .to_string()
                .contains("no column \"c\"")
        );
        assert!(
            Table::parse_tsv(b"", Path::new("z.tsv"))
                .unwrap_err()
                .to_string()
                .contains("header")
        );
    }
}
