//! `chart.png`: the run's time series as stacked line panels (one per
//! measure: posts/s, lag, CPU, memory), drawn into an RGB buffer and
//! written with the `png` crate. Text is rasterised with `ab_glyph` from a
//! system TrueType font (DejaVu or Liberation Sans); without one the chart
//! is drawn without labels and the report says so.

use anyhow::{Context as _, Result};
use std::path::Path;

const WIDTH: usize = 1_100;
const PANEL_HEIGHT: usize = 230;
const LEFT: usize = 80;
const RIGHT: usize = 190;
const TOP: usize = 30;
const BOTTOM: usize = 30;

/// Colours of the lines, in order.
const COLOURS: [[u8; 3]; 5] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [148, 103, 189],
    [140, 86, 75],
];

/// Fonts tried, in order.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// One line: a name and `(seconds, value)` points.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points, in time order.
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title (with its unit) and its lines.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title, e.g. "posts/s".
    pub title: String,
    /// Lines.
    pub lines: Vec<Line>,
}

/// A vertical marker (e.g. where measuring starts): seconds and label.
pub type Marker = (f64, String);

struct Canvas {
    px: Vec<u8>,
    w: usize,
    h: usize,
    font: Option<ab_glyph::FontVec>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        let font = FONTS.iter().find_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            ab_glyph::FontVec::try_from_vec(bytes).ok()
        });
        Canvas {
            px: vec![255; w * h * 3],
            w,
            h,
            font,
        }
    }

    fn blend(&mut self, x: i64, y: i64, c: [u8; 3], a: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        for (px, new) in self.px[i..i + 3].iter_mut().zip(c) {
            let old = f32::from(*px);
            *px = (old + (f32::from(new) - old) * a.clamp(0.0, 1.0)) as u8;
        }
    }

    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3], width: f64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) * 2.0).ceil().max(1.0) as usize;
        let r = (width / 2.0).ceil() as i64;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            for dx in -r..=r {
                for dy in -r..=r {
                    let d = ((dx * dx + dy * dy) as f64).sqrt();
                    if d <= width / 2.0 {
                        self.blend(x.round() as i64 + dx, y.round() as i64 + dy, c, 1.0);
                    }
                }
            }
        }
    }

    /// Draws `text` with its baseline's left end at `(x, y)`; returns its width.
    fn text(&mut self, x: f64, y: f64, text: &str, size: f32, c: [u8; 3]) -> f64 {
        use ab_glyph::{point, Font as _, ScaleFont as _};
        let Some(font) = self.font.take() else {
            return 0.0;
        };
        let scaled = font.as_scaled(size);
        let mut caret = x as f32;
        for ch in text.chars() {
            let glyph = scaled
                .glyph_id(ch)
                .with_scale_and_position(size, point(caret, y as f32));
            caret += scaled.h_advance(glyph.id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    self.blend(
                        b.min.x as i64 + i64::from(gx),
                        b.min.y as i64 + i64::from(gy),
                        c,
                        cov,
                    );
                });
            }
        }
        self.font = Some(font);
        f64::from(caret) - x
    }

    fn write(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut enc =
            png::Encoder::new(std::io::BufWriter::new(file), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().context("png header")?;
        w.write_image_data(&self.px).context("png data")?;
        Ok(())
    }
}

/// A round number at or above `v` (1, 2, 2.5 or 5 × 10^k).
pub fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

fn label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else if v >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws `panels` over a shared time axis into `path`; `markers` are
/// vertical lines with a label. Returns whether text could be drawn (a
/// font was found).
pub fn write(path: &Path, title: &str, panels: &[Panel], markers: &[Marker]) -> Result<bool> {
    let h = TOP + panels.len().max(1) * PANEL_HEIGHT;
    let mut c = Canvas::new(WIDTH, h);
    let has_font = c.font.is_some();
    c.text(LEFT as f64, 20.0, title, 16.0, [0, 0, 0]);
    let all = panels.iter().flat_map(|p| &p.lines).flat_map(|l| &l.points);
    let t_max = all.clone().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let (x0, x1) = (LEFT as f64, (WIDTH - RIGHT) as f64);
    let sx = |t: f64| x0 + (x1 - x0) * t / t_max;
    for (i, panel) in panels.iter().enumerate() {
        let top = (TOP + i * PANEL_HEIGHT + 20) as f64;
        let bottom = (TOP + (i + 1) * PANEL_HEIGHT - BOTTOM) as f64;
        let y_max = nice_ceiling(
            panel
                .lines
                .iter()
                .flat_map(|l| &l.points)
                .map(|p| p.1)
                .fold(0.0, f64::max),
        );
        let sy = |v: f64| bottom - (bottom - top) * (v / y_max).clamp(0.0, 1.05);
        let grey = [200, 200, 200];
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            c.line(
                (x0, sy(v)),
                (x1, sy(v)),
                if k == 0 { [0, 0, 0] } else { grey },
                1.0,
            );
            let l = label(v);
            c.text(
                x0 - 8.0 - 7.0 * l.len() as f64,
                sy(v) + 4.0,
                &l,
                12.0,
                [60, 60, 60],
            );
        }
        c.line((x0, top), (x0, bottom), [0, 0, 0], 1.0);
        let step = nice_ceiling(t_max / 10.0);
        let mut t = 0.0;
        while t <= t_max {
            c.line((sx(t), bottom), (sx(t), bottom + 4.0), [0, 0, 0], 1.0);
            c.text(sx(t) - 8.0, bottom + 17.0, &label(t), 11.0, [60, 60, 60]);
            t += step;
        }
        c.text(x1 + 8.0, bottom + 17.0, "seconds", 11.0, [60, 60, 60]);
        for (t, name) in markers {
            c.line((sx(*t), top), (sx(*t), bottom), [120, 120, 120], 1.0);
            if i == 0 {
                c.text(sx(*t) + 3.0, top + 10.0, name, 11.0, [90, 90, 90]);
            }
        }
        c.text(x0, top - 5.0, &panel.title, 13.0, [0, 0, 0]);
        for (j, line) in panel.lines.iter().enumerate() {
            let colour = COLOURS[j % COLOURS.len()];
            for pair in line.points.windows(2) {
                c.line(
                    (sx(pair[0].0), sy(pair[0].1)),
                    (sx(pair[1].0), sy(pair[1].1)),
                    colour,
                    2.0,
                );
            }
            let ly = top + 14.0 + 18.0 * j as f64;
            c.line((x1 + 10.0, ly - 4.0), (x1 + 30.0, ly - 4.0), colour, 3.0);
            c.text(x1 + 36.0, ly, &line.name, 12.0, [0, 0, 0]);
        }
    }
    c.write(path)?;
    Ok(has_font)
}

/// Per-second rates of a counter read at `(t, value)` points.
pub fn rates(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2_100.0), 2_500.0);
        assert_eq!(nice_ceiling(50_000.0), 50_000.0);
    }

    #[test]
    fn rates_are_differences_over_time() {
        assert_eq!(
            rates(&[(0.0, 0.0), (1.0, 10.0), (3.0, 50.0)]),
            vec![(1.0, 10.0), (3.0, 20.0)]
        );
    }

    #[test]
    fn a_chart_is_a_png_of_the_expected_size() {
        let dir = std::env::temp_dir().join(format!("loadtest-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("chart.png");
        let panel = Panel {
            title: "posts/s".into(),
            lines: vec![Line {
                name: "classified".into(),
                points: (0..60)
                    .map(|i| (f64::from(i), f64::from(i % 7) * 1_000.0))
                    .collect(),
            }],
        };
        write(
            &path,
            "test",
            &[panel.clone(), panel],
            &[(10.0, "measure".into())],
        )
        .expect("write");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(&bytes[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().expect("png info");
        let info = reader.info();
        assert_eq!(
            (info.width as usize, info.height as usize),
            (WIDTH, TOP + 2 * PANEL_HEIGHT)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
