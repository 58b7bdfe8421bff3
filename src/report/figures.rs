//! Figures as SVG and PNG (plotters, with a font shipped in `assets/` so no
//! system font library is needed): training curves, per-attribute accuracy,
//! RSL weights (the paper's Figure 5) and the ARL weight matrix (Figure 6).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

type Result<T> = std::result::Result<T, String>;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub fn register_font() {
    // Registering twice is harmless; failing only loses text, so ignore it.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
}

/// Draw one figure into `<dir>/<name>.svg` and `<dir>/<name>.png`.
macro_rules! both {
    ($dir:expr, $name:expr, $size:expr, $draw:ident, $($arg:expr),*) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        let png = $dir.join(format!("{}.png", $name));
        $draw(SVGBackend::new(&svg, $size).into_drawing_area(), $($arg),*)?;
        $draw(BitMapBackend::new(&png, $size).into_drawing_area(), $($arg),*)?;
        Ok(vec![format!("{}.svg", $name), format!("{}.png", $name)])
    }};
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Lines of `(label, [(epoch, mean, std)])`, each with a ± std band.
pub fn curves(
    dir: &Path,
    name: &str,
    title: &str,
    series: &[(String, Vec<(f64, f64, f64)>)],
) -> Result<Vec<String>> {
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        title: &str,
        series: &[(String, Vec<(f64, f64, f64)>)],
    ) -> Result<()> {
        root.fill(&WHITE).map_err(e)?;
        // The legend gets its own column, so it never covers a curve.
        let (plot, key) = root.split_horizontally(660);
        let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
        let ys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.1.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]))
            .collect();
        let xmax = xs.fold(1.0f64, f64::max);
        let (ymin, ymax) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        // Accuracy axis: padded, never below 0 or above 100.
        let pad = ((ymax - ymin) * 0.1).max(0.5);
        let (y0, y1) = ((ymin - pad).max(0.0), (ymax + pad).min(100.0));
        let (y0, y1) = if y1 - y0 < 1.0 {
            (y0, y0 + 1.0)
        } else {
            (y0, y1)
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..xmax + 0.5, y0..y1)
            .map_err(e)?;
        // One tick per epoch (at most ~20), labels only on whole epochs.
        let step = ((xmax / 20.0).ceil() as usize).max(1);
        chart
            .configure_mesh()
            .x_labels(((xmax as usize) * 2 + 2).min(42))
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && r >= 1.0 && (r as usize - 1) % step == 0 {
                    format!("{r:.0}")
                } else {
                    String::new()
                }
            })
            .x_desc("epoch")
            .y_desc("validation mean accuracy (%)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        for (i, (label, pts3)) in series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            if pts3.iter().any(|p| p.2 > 0.0) {
                let band: Vec<(f64, f64)> = pts3
                    .iter()
                    .map(|p| (p.0, (p.1 + p.2).min(y1)))
                    .chain(pts3.iter().rev().map(|p| (p.0, (p.1 - p.2).max(y0))))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(band, c.mix(0.15).filled())))
                    .map_err(e)?;
            }
            let pts: Vec<(f64, f64)> = pts3.iter().map(|p| (p.0, p.1)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(e)?;
            let y = 40 + 24 * i as i32;
            key.draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(3)))
                .map_err(e)?;
            key.draw(&Text::new(label.clone(), (36, y - 8), ("sans-serif", 14)))
                .map_err(e)?;
        }
        root.present().map_err(e)
    }
    both!(dir, name, (900, 520), draw, title, series)
}

/// Horizontal grouped bars: one row per category, one bar per group.
pub fn bars(
    dir: &Path,
    name: &str,
    title: &str,
    x_desc: &str,
    groups: &[String],
    rows: &[(String, Vec<f64>)],
) -> Result<Vec<String>> {
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        title: &str,
        x_desc: &str,
        groups: &[String],
        rows: &[(String, Vec<f64>)],
    ) -> Result<()> {
        root.fill(&WHITE).map_err(e)?;
        let vals: Vec<f64> = rows
            .iter()
            .flat_map(|r| r.1.iter().copied())
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = vals
            .iter()
            .fold((0.0f64, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = (hi - lo).max(1e-6);
        // Percentages stop at 100; the legend has its own column.
        let top = if x_desc.contains('%') && hi <= 100.0 {
            (hi + 0.05 * span).min(100.0)
        } else {
            hi + 0.05 * span
        };
        let n = rows.len() as f64;
        let (root, key) = root.split_horizontally(720);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(190)
            .build_cartesian_2d((lo - 0.05 * span)..top, 0.0..n)
            .map_err(e)?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len() * 2 + 1)
            .y_label_formatter(&|y| row_label(&labels, *y))
            .x_desc(x_desc)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        let k = groups.len().max(1) as f64;
        for (g, group) in groups.iter().enumerate() {
            let c = PALETTE[g % PALETTE.len()];
            let rects = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.1.get(g).is_some_and(|v| v.is_finite()))
                .map(|(i, r)| {
                    let top = n - i as f64 - 0.1 - g as f64 * 0.8 / k;
                    Rectangle::new([(0.0f64.max(lo), top), (r.1[g], top - 0.8 / k)], c.filled())
                });
            chart.draw_series(rects).map_err(e)?;
            let y = 40 + 24 * g as i32;
            key.draw(&Rectangle::new([(8, y - 6), (24, y + 6)], c.filled()))
                .map_err(e)?;
            key.draw(&Text::new(group.clone(), (30, y - 8), ("sans-serif", 14)))
                .map_err(e)?;
        }
        root.present().map_err(e)
    }
    let height = 120 + 34 * rows.len() as u32;
    both!(
        dir,
        name,
        (900, height.max(360)),
        draw,
        title,
        x_desc,
        groups,
        rows
    )
}

/// One claim's row in [`intervals`]: its label, 95% interval, the
/// threshold it is judged against and its verdict (which sets the colour).
pub struct IntervalRow {
    pub label: String,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub threshold: f64,
    pub verdict: &'static str,
}

/// A forest plot: each claim's 95% interval as a bar with its mean, and
/// a dashed tick at the threshold it must clear — a verdict at a glance
/// (supported green, contradicted red, inconclusive grey).
pub fn intervals(dir: &Path, name: &str, title: &str, rows: &[IntervalRow]) -> Result<Vec<String>> {
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        title: &str,
        rows: &[IntervalRow],
    ) -> Result<()> {
        root.fill(&WHITE).map_err(e)?;
        let xs = rows.iter().flat_map(|r| [r.low, r.high, r.threshold]);
        let (lo, hi) = xs
            .filter(|v| v.is_finite())
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let pad = 0.08 * (hi - lo).max(0.5);
        let n = rows.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(400)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..n)
            .map_err(e)?;
        let labels: Vec<String> = rows.iter().map(|r| ellipsis(&r.label, 58)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len() * 2 + 1)
            .y_label_formatter(&|y| row_label(&labels, *y))
            .x_desc("difference (percentage points), 95% interval")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        for (i, r) in rows.iter().enumerate() {
            let y = n - i as f64 - 0.5;
            let colour = match r.verdict {
                "supported" => PALETTE[2],
                "contradicted" => PALETTE[3],
                _ => RGBColor(110, 110, 110),
            };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(r.low, y), (r.high, y)],
                    colour.stroke_width(3),
                )))
                .map_err(e)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (r.mean, y),
                    5,
                    colour.filled(),
                )))
                .map_err(e)?;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(r.threshold, y - 0.4), (r.threshold, y + 0.4)],
                    4,
                    3,
                    BLACK.stroke_width(1),
                ))
                .map_err(e)?;
        }
        root.present().map_err(e)
    }
    let height = 100 + 46 * rows.len() as u32;
    both!(dir, name, (1000, height.max(240)), draw, title, rows)
}

/// The label of the horizontal bar row centred at `y` (row 0 at the top of
/// `labels.len()` rows); empty between rows.
fn row_label(labels: &[String], y: f64) -> String {
    let n = labels.len() as f64;
    let i = (n - y - 0.5).round();
    if (y - y.floor() - 0.5).abs() < 0.01 && i >= 0.0 && (i as usize) < labels.len() {
        labels[i as usize].clone()
    } else {
        String::new()
    }
}

/// `text` cut to at most `max` characters (`max` ≥ 1), with an ellipsis
/// where cut.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Blue (−1) through white (0) to red (+1).
fn diverging(v: f32) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    if v >= 0.0 {
        RGBColor(255, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8)
    } else {
        RGBColor((255.0 * (1.0 + v)) as u8, (255.0 * (1.0 + v)) as u8, 255)
    }
}

/// A vertical colour bar from −`max` to +`max` with its values.
fn colour_scale<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, max: f32) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(60)
        .margin_bottom(60)
        .margin_right(12)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, -(max as f64)..max as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|y| format!("{y:+.2}"))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    let steps = 100;
    chart
        .draw_series((0..steps).map(|i| {
            let lo = -max as f64 + 2.0 * max as f64 * i as f64 / steps as f64;
            let hi = lo + 2.0 * max as f64 / steps as f64;
            let v = ((lo + hi) / 2.0 / max as f64) as f32;
            Rectangle::new([(0.0, lo), (1.0, hi)], diverging(v).filled())
        }))
        .map_err(e)?;
    Ok(())
}

/// A labelled heatmap of `m[row][col]`, diverging colours around 0, with
/// its colour scale.
pub fn heatmap(
    dir: &Path,
    name: &str,
    title: &str,
    labels: &[String],
    m: &[Vec<f32>],
) -> Result<Vec<String>> {
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, Shift>,
        title: &str,
        labels: &[String],
        m: &[Vec<f32>],
    ) -> Result<()> {
        root.fill(&WHITE).map_err(e)?;
        let n = m.len();
        let max = m.iter().flatten().fold(1e-6f32, |a, &v| a.max(v.abs()));
        let width = root.dim_in_pixel().0;
        let (root, scale) = root.split_horizontally(width.saturating_sub(110));
        colour_scale(&scale, max)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..n as f64, 0.0..n as f64)
            .map_err(e)?;
        let ylab = labels.to_vec();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n * 2 + 1)
            .y_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    format!("{}", x.floor() as usize)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                let i = n as f64 - y - 0.5;
                if (y - y.floor() - 0.5).abs() < 0.01
                    && i.round() >= 0.0
                    && (i.round() as usize) < ylab.len()
                {
                    format!("{} {}", ylab[i.round() as usize], i.round() as usize)
                } else {
                    String::new()
                }
            })
            .x_desc("input attribute (index, as on the left)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        let cells = (0..n)
            .flat_map(|r| (0..n).map(move |c| (r, c)))
            .map(|(r, c)| {
                let color = diverging(m[r][c] / max);
                let top = (n - r) as f64;
                Rectangle::new(
                    [(c as f64, top), (c as f64 + 1.0, top - 1.0)],
                    color.filled(),
                )
            });
        chart.draw_series(cells).map_err(e)?;
        root.present().map_err(e)
    }
    let side = 260 + 40 * labels.len() as u32;
    both!(dir, name, (side + 230, side), draw, title, labels, m)
}

/// A CAM strip from `localize` (the image, then one overlay per attribute,
/// each its own CAM scaled from its minimum to its maximum), enlarged to
/// `tile` px per panel, each panel named, with the colour scale below.
/// Written as `<dir>/<name>.png`.
pub fn cam_strip(
    dir: &Path,
    name: &str,
    strip: &image::RgbImage,
    labels: &[String],
    tile: u32,
) -> Result<Vec<String>> {
    let side = strip.height().max(1);
    let panels = (strip.width() / side).max(1);
    let (head, foot) = (22u32, 46u32);
    let (w, h) = (panels * tile, head + tile + foot);
    let png = dir.join(format!("{name}.png"));
    let root = BitMapBackend::new(&png, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let scale = side as f32 / tile as f32;
    for y in 0..tile {
        for x in 0..w {
            let (sx, sy) = (
                (((x % tile) as f32 * scale) as u32).min(side - 1) + (x / tile) * side,
                ((y as f32 * scale) as u32).min(side - 1),
            );
            let p = strip.get_pixel(sx.min(strip.width() - 1), sy);
            root.draw_pixel((x as i32, (head + y) as i32), &RGBColor(p[0], p[1], p[2]))
                .map_err(e)?;
        }
    }
    let font = ("sans-serif", 13).into_font();
    let names = std::iter::once("image").chain(labels.iter().map(String::as_str));
    for (k, label) in names.take(panels as usize).enumerate() {
        // Long names are cut to what fits over the panel.
        let fits = (tile as usize / 7).max(4);
        root.draw_text(
            &ellipsis(label, fits),
            &font.color(&BLACK),
            ((k as u32 * tile + 4) as i32, 4),
        )
        .map_err(e)?;
    }
    // The colour scale: jet from each CAM's minimum to its maximum.
    let (bx, by, bw) = (
        70i32,
        (head + tile + 10) as i32,
        (w as i32 - 140).clamp(60, 400),
    );
    for i in 0..bw {
        let c = crate::colour::jet(i as f32 / (bw - 1) as f32).map(|v| v as u8);
        root.draw(&Rectangle::new(
            [(bx + i, by), (bx + i + 1, by + 12)],
            RGBColor(c[0], c[1], c[2]).filled(),
        ))
        .map_err(e)?;
    }
    let small = ("sans-serif", 12).into_font().color(&BLACK);
    root.draw_text("min", &small, (bx - 30, by)).map_err(e)?;
    root.draw_text("max", &small, (bx + bw + 6, by))
        .map_err(e)?;
    // The caption fits the figure: two panels (birds) are 320 px wide.
    let caption = if w >= 560 {
        "each overlay: its attribute's CAM, from its minimum to its maximum"
    } else {
        "each overlay: its CAM, min to max"
    };
    root.draw_text(caption, &small, (bx, by + 16)).map_err(e)?;
    root.present().map_err(e)?;
    Ok(vec![format!("{name}.png")])
}
