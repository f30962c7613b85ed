//! Figures drawn with `plotters` on its bitmap backend, text rendered from the embedded
//! DejaVu Sans (via `ab_glyph`), encoded as PNG. No system font or font library is used.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::encode::{RgbImage, encode_png};
use crate::{Error, Result};

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `fonts/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // the embedded file is a valid TrueType font (checked by the tests)
            let _ = plotters::style::register_font(FAMILY, style, FONT);
        }
    });
}

/// Colours of the figures (colour-blind-safe palette of Wong, Nat Methods 2011).
pub mod palette {
    use plotters::style::RGBColor;
    /// Blue.
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    /// Orange.
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    /// Bluish green.
    pub const GREEN: RGBColor = RGBColor(0, 158, 115);
    /// Vermillion.
    pub const RED: RGBColor = RGBColor(213, 94, 0);
    /// Reddish purple.
    pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
    /// Sky blue.
    pub const SKY: RGBColor = RGBColor(86, 180, 233);
    /// Grey.
    pub const GREY: RGBColor = RGBColor(110, 110, 110);
    /// A list to cycle through.
    pub const CYCLE: [RGBColor; 6] = [BLUE, ORANGE, GREEN, RED, PURPLE, SKY];
}

/// One line of a [`LinePanel`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry (empty: not in the legend).
    pub name: String,
    /// Colour.
    pub colour: RGBColor,
    /// Points `(x, y)`; non-finite points are dropped.
    pub points: Vec<(f64, f64)>,
    /// Line width in pixels.
    pub width: u32,
    /// Draw a dot at each point.
    pub markers: bool,
}

/// A panel of lines with axes.
#[derive(Debug, Clone, Default)]
pub struct LinePanel {
    /// Caption above the panel.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(y, legend)`, dashed grey.
    pub hlines: Vec<(f64, String)>,
    /// Fixed vertical range (from the data when `None`).
    pub y_range: Option<(f64, f64)>,
    /// Fixed horizontal range (from the data when `None`).
    pub x_range: Option<(f64, f64)>,
    /// Names of integer x positions (categorical axis), e.g. `["before", "during"]`.
    pub x_categories: Vec<String>,
}

/// A scatter panel with an optional regression line and confidence band.
#[derive(Debug, Clone, Default)]
pub struct ScatterPanel {
    /// Caption.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Colour of points and line.
    pub colour: Option<RGBColor>,
    /// Fitted line and its 95 % confidence band: `(x, fit, low, high)` along x.
    pub fit: Vec<(f64, f64, f64, f64)>,
    /// Shared ranges (so side-by-side panels compare).
    pub x_range: Option<(f64, f64)>,
    /// Shared vertical range.
    pub y_range: Option<(f64, f64)>,
}

/// One row of a [`bar_null_plot`]: an observed value and its null distributions.
#[derive(Debug, Clone)]
pub struct BarRow {
    /// Row label (e.g. the receptor map).
    pub label: String,
    /// Observed value (bar).
    pub value: f64,
    /// Null distributions `(name, draws)`, drawn as grey dots with their 2.5–97.5 % interval.
    pub nulls: Vec<(String, Vec<f64>)>,
    /// Text after the bar (e.g. significance marks).
    pub mark: String,
}

fn fig_err<E: std::fmt::Display>(id: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::figure(id, e)
}

fn to_png(buf: Vec<u8>, w: usize, h: usize) -> Result<Vec<u8>> {
    encode_png(&RgbImage {
        width: w,
        height: h,
        data: buf,
    })
}

fn range_of(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - pad * span, hi + pad * span)
}

/// Renders `draw` into a `w × h` PNG.
fn render(
    id: &str,
    w: usize,
    h: usize,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<Vec<u8>> {
    register_font();
    let mut buf = vec![255u8; w * h * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(fig_err(id))?;
        draw(&root)?;
        root.present().map_err(fig_err(id))?;
    }
    to_png(buf, w, h)
}

/// Line panels in a grid of `cols` columns, each `panel_w × panel_h` pixels; PNG bytes.
pub fn line_panels(
    id: &str,
    panels: &[LinePanel],
    cols: usize,
    panel_w: usize,
    panel_h: usize,
) -> Result<Vec<u8>> {
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    render(id, cols * panel_w, rows * panel_h, |root| {
        let areas = root.split_evenly((rows, cols));
        for (area, p) in areas.iter().zip(panels) {
            draw_line_panel(id, area, p)?;
        }
        Ok(())
    })
}

fn draw_line_panel(
    id: &str,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    p: &LinePanel,
) -> Result<()> {
    let e = fig_err(id);
    let (x0, x1) = p.x_range.unwrap_or_else(|| {
        let (a, b) = range_of(
            p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0)),
            0.02,
        );
        if b > a { (a, b) } else { (a - 0.5, b + 0.5) }
    });
    let has_legend = !p.hlines.is_empty() || p.series.iter().any(|s| !s.name.is_empty());
    let (y0, mut y1) = p.y_range.unwrap_or_else(|| {
        range_of(
            p.series
                .iter()
                .flat_map(|s| s.points.iter().map(|q| q.1))
                .chain(p.hlines.iter().map(|h| h.0)),
            0.08,
        )
    });
    if has_legend {
        // headroom so the legend box (about 17 px per entry) does not hide data: the share of
        // the plot's height it takes, above the data's range
        let entries = p.hlines.len() + p.series.iter().filter(|s| !s.name.is_empty()).count();
        let plot_px = (area.dim_in_pixel().1 as f64 - 100.0).max(60.0);
        let share = ((entries as f64 * 17.0 + 14.0) / plot_px).clamp(0.2, 0.6);
        y1 += share / (1.0 - share) * (y1 - y0);
    }
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FAMILY, 17))
        .margin(10)
        // the last tick label is centred on the plot's right edge: room for its other half
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(&e)?;
    let cats = p.x_categories.clone();
    let fmt = move |x: &f64| -> String {
        if cats.is_empty() {
            let a = x.abs();
            if a != 0.0 && !(0.01..10000.0).contains(&a) {
                format!("{x:.1e}")
            } else if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}").trim_end_matches('0').to_string()
            }
        } else {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
                cats[i as usize].clone()
            } else {
                String::new()
            }
        }
    };
    let yfmt = |y: &f64| {
        if y.abs() < 1e-9 {
            "0".to_string()
        } else if y.abs() >= 100.0 || (y - y.round()).abs() < 1e-9 {
            format!("{y:.0}")
        } else {
            format!("{y:.2}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&fmt)
        .y_label_formatter(&yfmt);
    if !p.x_categories.is_empty() {
        mesh.x_labels(((x1 - x0) * 10.0).round() as usize + 1);
    }
    mesh.draw().map_err(&e)?;
    let mut legend = false;
    for (y, name) in &p.hlines {
        let (y, name) = (*y, name.clone());
        let style = ShapeStyle::from(&palette::RED).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(vec![(x0, y), (x1, y)], 6, 4, style))
            .map_err(&e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        legend = true;
    }
    for s in &p.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|q| q.0.is_finite() && q.1.is_finite())
            .collect();
        let style = ShapeStyle::from(&s.colour).stroke_width(s.width.max(1));
        let ann = chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(&e)?;
        if !s.name.is_empty() {
            ann.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(3))
            });
            legend = true;
        }
        if s.markers {
            let c = s.colour;
            chart
                .draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled())))
                .map_err(&e)?;
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(&e)?;
    }
    Ok(())
}

/// Scatter panels side by side (one row), each `panel_w × panel_h`; PNG bytes.
pub fn scatter_panels(
    id: &str,
    panels: &[ScatterPanel],
    panel_w: usize,
    panel_h: usize,
) -> Result<Vec<u8>> {
    let n = panels.len().max(1);
    render(id, n * panel_w, panel_h, |root| {
        let areas = root.split_evenly((1, n));
        for (area, p) in areas.iter().zip(panels) {
            let e = fig_err(id);
            let (x0, x1) = p
                .x_range
                .unwrap_or_else(|| range_of(p.points.iter().map(|q| q.0), 0.08));
            let (y0, y1) = p.y_range.unwrap_or_else(|| {
                range_of(
                    p.points
                        .iter()
                        .map(|q| q.1)
                        .chain(p.fit.iter().flat_map(|f| [f.2, f.3])),
                    0.08,
                )
            });
            let mut chart = ChartBuilder::on(area)
                .caption(&p.title, (FAMILY, 15))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(&e)?;
            chart
                .configure_mesh()
                .x_desc(p.x_label.as_str())
                .y_desc(p.y_label.as_str())
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 13))
                .light_line_style(RGBColor(238, 238, 238))
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(&e)?;
            let c = p.colour.unwrap_or(palette::BLUE);
            if p.fit.len() >= 2 {
                let mut band: Vec<(f64, f64)> = p.fit.iter().map(|f| (f.0, f.3)).collect();
                band.extend(p.fit.iter().rev().map(|f| (f.0, f.2)));
                chart
                    .draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))
                    .map_err(&e)?;
                chart
                    .draw_series(LineSeries::new(
                        p.fit.iter().map(|f| (f.0, f.1)),
                        ShapeStyle::from(&c).stroke_width(2),
                    ))
                    .map_err(&e)?;
            }
            chart
                .draw_series(
                    p.points
                        .iter()
                        .filter(|q| q.0.is_finite() && q.1.is_finite())
                        .map(|&q| Circle::new(q, 4, c.filled())),
                )
                .map_err(&e)?;
        }
        Ok(())
    })
}

/// Horizontal bars of observed values with their null distributions (grey dots, one row of
/// dots per null model, and a black 2.5–97.5 % interval); PNG bytes.
pub fn bar_null_plot(
    id: &str,
    title: &str,
    x_label: &str,
    rows: &[BarRow],
    w: usize,
) -> Result<Vec<u8>> {
    let n = rows.len().max(1);
    let n_nulls_h = rows
        .iter()
        .flat_map(|r| r.nulls.iter().map(|x| x.0.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let h = 90 + 46 * n + 28 * n_nulls_h;
    render(id, w, h, |root| {
        let e = fig_err(id);
        let (mut lo, mut hi) = range_of(
            rows.iter()
                .flat_map(|r| {
                    std::iter::once(r.value).chain(r.nulls.iter().flat_map(|n| n.1.iter().copied()))
                })
                .chain([0.0]),
            0.05,
        );
        lo = lo.max(-1.0);
        hi = hi.min(1.0);
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        // room below the last row for the legend of the null models
        let n_nulls = {
            let mut v: Vec<&str> = rows
                .iter()
                .flat_map(|r| r.nulls.iter().map(|x| x.0.as_str()))
                .collect();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        let bottom = -0.6 - 0.6 * n_nulls as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FAMILY, 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(lo..hi, bottom..(n as f64 - 0.4))
            .map_err(&e)?;
        let yfmt = move |y: &f64| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[labels.len() - 1 - i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .y_labels(n * 5 + 1)
            .y_label_formatter(&yfmt)
            .x_label_formatter(&|x: &f64| {
                if x.abs() < 1e-9 {
                    "0".to_string()
                } else {
                    format!("{x:.1}")
                }
            })
            .disable_y_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(&e)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, bottom), (0.0, n as f64 - 0.4)],
                BLACK,
            ))
            .map_err(&e)?;
        let null_names: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in rows {
                for (name, _) in &r.nulls {
                    if !v.contains(name) {
                        v.push(name.clone());
                    }
                }
            }
            v
        };
        let null_colour = |name: &str| {
            const C: [RGBColor; 3] = [palette::PURPLE, palette::GREEN, palette::GREY];
            C[null_names.iter().position(|n| n == name).unwrap_or(0) % 3]
        };
        for name in &null_names {
            let c = null_colour(name);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(&e)?
                .label(format!("null: {name} (2.5–97.5 %)"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        for (k, r) in rows.iter().enumerate() {
            let y = (n - 1 - k) as f64;
            let m = r.nulls.len().max(1) as f64;
            for (j, (name, draws)) in r.nulls.iter().enumerate() {
                let yy = y + 0.1 + 0.3 * (j as f64 + 0.5) / m;
                let c = null_colour(name);
                let dot = c.mix(0.18);
                chart
                    .draw_series(draws.iter().enumerate().filter(|d| d.1.is_finite()).map(
                        |(i, &v)| {
                            // deterministic vertical jitter
                            let jit = ((i * 7919) % 97) as f64 / 97.0 - 0.5;
                            Circle::new((v, yy + 0.1 * jit / m), 2, dot.filled())
                        },
                    ))
                    .map_err(&e)?;
                let mut s: Vec<f64> = draws.iter().copied().filter(|v| v.is_finite()).collect();
                if s.len() >= 2 {
                    s.sort_by(f64::total_cmp);
                    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
                    chart
                        .draw_series(LineSeries::new(
                            vec![(q(0.025), yy), (q(0.975), yy)],
                            ShapeStyle::from(&c).stroke_width(2),
                        ))
                        .map_err(&e)?;
                }
            }
            let c = if r.value >= 0.0 {
                palette::RED
            } else {
                palette::BLUE
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.32), (r.value, y + 0.02)],
                    c.filled(),
                )))
                .map_err(&e)?;
            if !r.mark.is_empty() {
                let x = if r.value >= 0.0 { r.value } else { 0.0 };
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!(" {}", r.mark),
                        (x, y - 0.05),
                        (FAMILY, 14).into_font().color(&BLACK),
                    )))
                    .map_err(&e)?;
            }
        }
        if !null_names.is_empty() {
            chart
                .configure_series_labels()
                .label_font((FAMILY, 12))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(&e)?;
        }
        Ok(())
    })
}

/// Draws white text with a dark outline onto an RGB image: `(text, x, y, size in px)`.
pub fn draw_text(img: &mut RgbImage, texts: &[(String, i32, i32, f64)]) -> Result<()> {
    register_font();
    let (w, h) = (img.width as u32, img.height as u32);
    let root = BitMapBackend::with_buffer(&mut img.data, (w, h)).into_drawing_area();
    for (t, x, y, size) in texts {
        for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
            root.draw(&Text::new(
                t.as_str(),
                (x + dx, y + dy),
                (FAMILY, *size).into_font().color(&BLACK),
            ))
            .map_err(fig_err("text"))?;
        }
        root.draw(&Text::new(
            t.as_str(),
            (*x, *y),
            (FAMILY, *size).into_font().color(&WHITE),
        ))
        .map_err(fig_err("text"))?;
    }
    root.present().map_err(fig_err("text"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn embedded_font_renders_text() {
        register_font();
        // a caption-only figure: some pixels must be dark (the glyphs)
        let png = render("t", 200, 40, |root| {
            root.draw(&Text::new("CBF 42", (5, 5), (FAMILY, 20)))
                .map_err(fig_err("t"))
        })
        .unwrap();
        let (_, _, px) = decode(&png);
        let dark = px.chunks(3).filter(|c| c[0] < 100).count();
        assert!(dark > 30, "only {dark} dark pixels: text not rendered");
    }

    #[test]
    fn line_panel_draws_its_series_colour() {
        let p = LinePanel {
            title: "t".into(),
            series: vec![Series {
                name: "a".into(),
                colour: palette::ORANGE,
                points: vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.5)],
                width: 2,
                markers: true,
            }],
            ..Default::default()
        };
        let png = line_panels("t", &[p], 1, 300, 200).unwrap();
        let (w, h, px) = decode(&png);
        assert_eq!((w, h), (300, 200));
        let orange = px
            .chunks(3)
            .filter(|c| c[0] == 230 && c[1] == 159 && c[2] == 0)
            .count();
        assert!(orange > 50, "{orange} orange pixels");
    }
}
