//! HTML building blocks: escaping, the page skeleton with its inline style sheet, figures,
//! tables and colour bars. No script, no external resource.

use std::fmt::Write as _;

use crate::encode::png_data_uri;
use crate::slices::Cmap;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --accent:#1f5fa8; --bad:#b3261e; --ok:#1e7b34; --bg:#ffffff; --panel:#f6f8fb; }
* { box-sizing: border-box; }
body { margin:0; font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color:var(--fg); background:var(--bg); font-size:14px; line-height:1.5; }
header { background:#16324f; color:#fff; padding:18px 32px; }
header h1 { margin:0; font-size:24px; font-weight:600; }
header p { margin:4px 0 0; color:#c9d6e6; font-size:13px; }
nav { position:sticky; top:0; background:#eef2f7; border-bottom:1px solid var(--line); padding:6px 32px; font-size:13px; z-index:2; }
nav a { color:var(--accent); margin-right:16px; text-decoration:none; }
main { padding:8px 32px 48px; max-width:1280px; }
h2 { font-size:20px; border-bottom:2px solid var(--accent); padding-bottom:4px; margin-top:36px; }
h3 { font-size:16px; margin:24px 0 8px; color:#24364f; }
figure { margin:12px 0 20px; background:var(--panel); border:1px solid var(--line); border-radius:4px; padding:10px; }
figure img { max-width:100%; height:auto; display:block; image-rendering:auto; }
figure.mosaic img { image-rendering:pixelated; background:#000; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:6px; }
table { border-collapse:collapse; margin:8px 0 16px; font-size:12.5px; }
th, td { border:1px solid var(--line); padding:3px 8px; text-align:right; }
th { background:#eef2f7; text-align:center; }
td.t { text-align:left; }
tr.flag td { background:#fdecea; }
td.flag { color:var(--bad); font-weight:600; }
td.ok { color:var(--ok); }
td.sig { font-weight:700; }
.missing { border-left:4px solid #d9a400; background:#fff8e1; padding:8px 12px; margin:8px 0; color:#5d4a00; }
.summary { display:grid; grid-template-columns: max-content auto; gap:2px 18px; background:var(--panel); border:1px solid var(--line); padding:10px 16px; border-radius:4px; }
.summary dt { font-weight:600; color:#24364f; }
.summary dd { margin:0; }
.cbar { display:flex; align-items:center; gap:8px; font-size:12px; color:var(--muted); margin-top:6px; }
.cbar span.bar { display:inline-block; width:180px; height:12px; border:1px solid #999; }
.methods { background:var(--panel); border:1px solid var(--line); padding:10px 16px; border-radius:4px; }
.refs li { margin-bottom:4px; font-size:13px; }
details > summary { cursor:pointer; color:var(--accent); margin:6px 0; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap:12px; }
"#;

/// A whole page: `<header>` with `title`/`subtitle`, a navigation bar linking `nav`
/// (`(anchor id, label)`), then `body` inside `<main>`.
pub fn page(title: &str, subtitle: &str, nav: &[(String, String)], body: &str) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(
        s,
        "<header><h1>{}</h1><p>{}</p></header>",
        esc(title),
        esc(subtitle)
    );
    s.push_str("<nav>");
    for (id, label) in nav {
        let _ = write!(s, "<a href=\"#{}\">{}</a>", esc(id), esc(label));
    }
    s.push_str("</nav>\n<main>\n");
    s.push_str(body);
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

/// A `<figure>` with an inline PNG; `class` is `mosaic` for brain slices (pixelated scaling).
pub fn figure(id: &str, class: &str, png: &[u8], alt: &str, caption_html: &str) -> String {
    format!(
        "<figure id=\"{}\" class=\"{}\"><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
        esc(id),
        esc(class),
        png_data_uri(png),
        esc(alt),
        caption_html
    )
}

/// A colour bar legend for a colour map between two values.
pub fn colour_bar(cmap: Cmap, lo: f64, hi: f64, unit: &str) -> String {
    format!(
        "<div class=\"cbar\">{lo:.1}<span class=\"bar\" style=\"background:{}\"></span>{hi:.1} {}</div>",
        cmap.css_gradient(),
        esc(unit)
    )
}

/// A box saying what is missing (instead of a figure or table).
pub fn missing(text: &str) -> String {
    format!("<p class=\"missing\">{}</p>\n", esc(text))
}

/// A table cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Text (escaped on output).
    pub text: String,
    /// CSS class (`t` for left-aligned text, `flag`, `ok`, `sig`), may be empty.
    pub class: &'static str,
}

impl Cell {
    /// A left-aligned text cell.
    pub fn text(s: impl Into<String>) -> Self {
        Self {
            text: s.into(),
            class: "t",
        }
    }
    /// A right-aligned number cell.
    pub fn num(s: impl Into<String>) -> Self {
        Self {
            text: s.into(),
            class: "",
        }
    }
    /// With a class.
    pub fn class(mut self, c: &'static str) -> Self {
        self.class = c;
        self
    }
}

/// A table; rows whose flag is true get the `flag` row class.
pub fn table(id: &str, header: &[&str], rows: &[(Vec<Cell>, bool)]) -> String {
    let mut s = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for (cells, flag) in rows {
        s.push_str(if *flag { "<tr class=\"flag\">" } else { "<tr>" });
        for c in cells {
            if c.class.is_empty() {
                let _ = write!(s, "<td>{}</td>", esc(&c.text));
            } else {
                let _ = write!(s, "<td class=\"{}\">{}</td>", c.class, esc(&c.text));
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
    s
}

/// Formats a number for a table: `n/a` when not finite, else `digits` decimals.
pub fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "n/a".into()
    }
}

/// Formats a p value (`< 0.001` below one in a thousand).
pub fn pval(p: f64) -> String {
    if !p.is_finite() {
        "n/a".into()
    } else if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_characters() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn page_has_no_external_reference() {
        let p = page("t", "s", &[("a".into(), "A".into())], "<p>x</p>");
        assert!(!p.contains("http"));
        assert!(!p.contains("<script"));
        assert!(!p.contains("<link"));
    }
}
