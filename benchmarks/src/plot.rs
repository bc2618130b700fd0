//! PNG plots of the round trips, of the payload sweep and of the open-loop latency histograms,
//! drawn with plotters' bitmap backend and a font shipped with the harness (no system font
//! library needed).

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::rounds::MethodResult;
use crate::stats::quantile;
use crate::sweep::SweepResult;
use crate::sys::Res;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

const COLORS: [RGBColor; 7] = [
    RGBColor(0, 0, 0),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

fn register() -> Res<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| "the shipped font does not load".to_string())
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing: {e:?}")
}

/// The percentile of `x` on the plot's axis: x = 1 means 90%, 2 means 99%, 3 means 99.9%.
fn pct_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    if x < 0.5 {
        format!("{q:.0}%")
    } else {
        let digits = (x.round() as usize).saturating_sub(2);
        format!("{q:.digits$}%")
    }
}

/// Round-trip time by percentile, one line per method, log scale.
pub fn round_trips(path: &Path, results: &[MethodResult], title: &str) -> Res<()> {
    register()?;
    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    // Up to the percentile that the largest sample set resolves (99.999% at most); each line
    // stops where its own samples do.
    let n_max = results
        .iter()
        .map(|r| r.samples.len())
        .max()
        .unwrap_or(1)
        .max(10);
    let x_max = (n_max as f64).log10().floor().clamp(1.0, 5.0);
    let lo = results
        .iter()
        .filter_map(|r| r.samples.first())
        .min()
        .copied()
        .unwrap_or(10) as f64;
    let hi = results
        .iter()
        .filter_map(|r| r.samples.last())
        .max()
        .copied()
        .unwrap_or(1000) as f64;
    let (y_lo, y_hi) = (
        10f64.powf((lo * 0.8).log10().floor()),
        10f64.powf((hi * 1.2).log10().ceil()),
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, (y_lo..y_hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("round-trip time")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| pct_label(*x))
        .y_label_formatter(&|y| human_ns(*y))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    for (i, r) in results.iter().enumerate() {
        if r.samples.is_empty() {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let x_end = (r.samples.len() as f64).log10().min(x_max);
        let points: Vec<(f64, f64)> = (0..=((x_end * 50.0) as usize))
            .map(|k| {
                let x = k as f64 / 50.0;
                let q = 1.0 - 10f64.powf(-x);
                (x, quantile(&r.samples, q).max(1) as f64)
            })
            .collect();
        let label = format!(
            "{} (median {} ns, x{} raw)",
            r.method.name(),
            r.dist.median,
            crate::report::ratio(r.paired.ratio)
        );
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Publish-to-seen time against payload size: median, p99 and p99.9.
pub fn sweep(path: &Path, results: &[SweepResult], title: &str) -> Res<()> {
    register()?;
    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let top = results.iter().map(|r| r.dist.p999).max().unwrap_or(1000) as f64 * 1.2;
    let top = 10f64.powf(top.log10().ceil());
    // x is log2 of the payload size, labelled at the sizes of the sweep.
    let x_hi = results.last().map(|r| r.bytes).unwrap_or(1 << 22) as f64;
    let x_hi = x_hi.log2() + 0.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(2.5f64..x_hi, (10f64..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("payload (bytes, written before the clock starts)")
        .y_desc("publish to seen by the peer")
        .x_labels(((x_hi - 2.5) * 2.0) as usize + 1)
        .max_light_lines(4)
        .x_label_formatter(&|x| {
            let e = x.round();
            if (x - e).abs() < 0.01 && (e as u32 % 2 == 1 || e as u32 == 22) {
                human_bytes(2f64.powf(e))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| human_ns(*y))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    type Pick = fn(&SweepResult) -> u64;
    let series: [(&str, Pick, RGBColor); 3] = [
        ("median", |r| r.dist.median, COLORS[1]),
        ("p99", |r| r.dist.p99, COLORS[2]),
        ("p99.9", |r| r.dist.p999, COLORS[3]),
    ];
    for (name, f, color) in series {
        let points: Vec<(f64, f64)> = results
            .iter()
            .map(|r| ((r.bytes as f64).log2(), f(r) as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One curve of a latency histogram: its legend, its samples and their exact maximum.
pub struct HistLine<'a> {
    /// The legend's text.
    pub label: String,
    /// The samples, in nanoseconds.
    pub hist: &'a Histogram<u64>,
    /// The exact largest sample, marked on the plot.
    pub max_ns: u64,
}

/// One panel of latency histograms.
pub struct HistPanel<'a> {
    /// The panel's caption.
    pub title: String,
    /// Its curves, each in its own colour.
    pub lines: Vec<HistLine<'a>>,
}

/// Latency histograms in the manner of OSADL's cyclictest plots: latency in µs on a linear x
/// axis, the number of samples per bin on a logarithmic y axis, each curve's maximum marked by
/// a dashed vertical line and its value. Panels in a grid of `cols` columns.
pub fn latency_histograms(
    path: &Path,
    title: &str,
    panels: &[HistPanel<'_>],
    cols: usize,
) -> Res<()> {
    register()?;
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (560 * cols as u32, 440 * rows as u32 + 50);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let body = root.titled(title, ("sans-serif", 24)).map_err(err)?;
    for (panel, area) in panels.iter().zip(body.split_evenly((rows, cols)).iter()) {
        hist_panel(area, panel)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The smallest of 1, 2 and 5 times a power of ten that is at least `x`.
fn nice_step(x: f64) -> f64 {
    let e = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|&v| v >= x)
        .unwrap_or(10.0 * e)
}

fn hist_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, p: &HistPanel<'_>) -> Res<()> {
    let max_ns = p
        .lines
        .iter()
        .map(|l| l.max_ns)
        .max()
        .unwrap_or(0)
        .max(1000);
    let x_hi = max_ns as f64 / 1000.0 * 1.08;
    // About 300 bins across the panel, each at least 10 ns (the histograms' resolution is
    // 0.1% of the value, so no bin falls between two of their buckets).
    let bin = nice_step((x_hi / 300.0).max(0.01));
    let nbins = (x_hi / bin).ceil() as usize + 1;
    let binned: Vec<Vec<u64>> = p
        .lines
        .iter()
        .map(|l| {
            let mut c = vec![0u64; nbins];
            for v in l.hist.iter_recorded() {
                let i = (v.value_iterated_to() as f64 / 1000.0 / bin) as usize;
                c[i.min(nbins - 1)] += v.count_at_value();
            }
            c
        })
        .collect();
    let y_max = binned.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    // Two decades of room above the highest bin, for the legend.
    let y_hi = 10f64.powf(y_max.log10().ceil() + 2.0);
    let y_lo = 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_hi, (y_lo..y_hi).log_scale())
        .map_err(err)?;
    let bin_label = if bin >= 1.0 {
        format!("{bin:.0}")
    } else {
        format!("{bin}")
    };
    chart
        .configure_mesh()
        .x_desc("latency (\u{b5}s)")
        .y_desc(format!("samples per {bin_label} \u{b5}s bin"))
        .max_light_lines(2)
        .x_label_formatter(&|x| {
            if x_hi >= 20.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        })
        .y_label_formatter(&|y| {
            let e = y.log10();
            if (e - e.round()).abs() > 0.01 || *y < 1.0 {
                return String::new();
            }
            match e.round() as u32 {
                e @ 0..=2 => 10u64.pow(e).to_string(),
                e @ 3..=5 => format!("{}k", 10u64.pow(e - 3)),
                e => format!("{}M", 10u64.pow(e - 6)),
            }
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let n = p.lines.len();
    for (i, (line, counts)) in p.lines.iter().zip(&binned).enumerate() {
        let color = COLORS[(i + 1) % COLORS.len()];
        // The legend, on an empty series.
        chart
            .draw_series(LineSeries::new(Vec::<(f64, f64)>::new(), color))
            .map_err(err)?
            .label(&line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        // Runs of non-empty bins as lines, lone ones as dots: an empty bin breaks the curve,
        // as it has no place on a logarithmic axis.
        let x_of = |k: usize| (k as f64 + 0.5) * bin;
        let mut k = 0;
        while k < nbins {
            if counts[k] == 0 {
                k += 1;
                continue;
            }
            let start = k;
            while k < nbins && counts[k] != 0 {
                k += 1;
            }
            let pts: Vec<(f64, f64)> = (start..k).map(|j| (x_of(j), counts[j] as f64)).collect();
            if pts.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(pts[0], 2, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(1)))
                    .map_err(err)?;
            }
        }
        // The maximum: a dashed vertical line and its value, staggered so that the labels of
        // several curves do not overlap.
        let x_max = line.max_ns as f64 / 1000.0;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_max, y_lo), (x_max, y_hi)],
                6,
                4,
                color.stroke_width(1),
            ))
            .map_err(err)?;
        let y_label = 10f64.powf(y_max.log10() * (0.8 - 0.25 * i as f64 / n.max(1) as f64));
        let right = x_max > x_hi * 0.5;
        let anchor = Pos::new(if right { HPos::Right } else { HPos::Left }, VPos::Center);
        let style = TextStyle::from(("sans-serif", 14).into_font())
            .color(&color)
            .pos(anchor);
        let text = format!(" max {} ", human_us(line.max_ns));
        chart
            .draw_series(std::iter::once(Text::new(text, (x_max, y_label), style)))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Nanoseconds as microseconds with three significant digits: "0.254 µs", "12.3 µs", "1,234 µs".
pub fn human_us(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 1.0 {
        format!("{us:.3} \u{b5}s")
    } else if us < 10.0 {
        format!("{us:.2} \u{b5}s")
    } else if us < 100.0 {
        format!("{us:.1} \u{b5}s")
    } else {
        format!("{} \u{b5}s", crate::report::thousands(us.round() as u64))
    }
}

fn human_bytes(x: f64) -> String {
    let b = x.round() as u64;
    if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn human_ns(y: f64) -> String {
    if y >= 1e6 {
        format!("{:.0} ms", y / 1e6)
    } else if y >= 1e3 {
        format!("{:.0} \u{b5}s", y / 1e3)
    } else {
        format!("{y:.0} ns")
    }
}
