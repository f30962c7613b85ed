//! Reading figures and headings back from a report.

use std::path::PathBuf;

/// Decodes standard base64.
pub fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= val(*b) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

/// The PNG bytes of the figure with this id.
pub fn figure_png(html: &str, id: &str) -> Option<Vec<u8>> {
    let start = html.find(&format!("<figure id=\"{id}\""))?;
    let rest = &html[start..];
    let src = rest.find("src=\"data:image/png;base64,")? + "src=\"data:image/png;base64,".len();
    let end = rest[src..].find('"')?;
    Some(b64decode(&rest[src..src + end]))
}

/// Width, height and RGB bytes of a PNG.
pub fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).expect("PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// `h2`/`h3` headings, one per line, indented by level.
pub fn headings(html: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(p) = html[i..].find("<h") {
        let at = i + p;
        let lvl = html.as_bytes().get(at + 2).copied();
        if matches!(lvl, Some(b'2') | Some(b'3')) {
            let open_end = at + html[at..].find('>').unwrap() + 1;
            let close = open_end + html[open_end..].find("</h").unwrap();
            let text = &html[open_end..close];
            let indent = if lvl == Some(b'2') { "" } else { "  " };
            out.push_str(&format!("{indent}{}\n", text));
            i = close;
        } else {
            i = at + 2;
        }
    }
    out
}

/// Figure ids, one per line.
pub fn figure_ids(html: &str) -> String {
    let mut out = String::from("figures:\n");
    for (i, _) in html.match_indices("<figure id=\"") {
        let s = i + "<figure id=\"".len();
        let e = s + html[s..].find('"').unwrap();
        out.push_str(&format!("  {}\n", &html[s..e]));
    }
    out
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/it/snapshots/{name}.txt"))
}

/// Compares with the checked-in snapshot; `UPDATE_SNAPSHOTS=1` rewrites it.
pub fn assert_snapshot(name: &str, got: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{}: no snapshot; run with UPDATE_SNAPSHOTS=1 once and review it",
            path.display()
        )
    });
    if want != got {
        panic!(
            "section structure differs from {} (UPDATE_SNAPSHOTS=1 to accept):\n--- want\n{want}\n--- got\n{got}",
            path.display()
        );
    }
}
