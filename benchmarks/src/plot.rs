//! PNG plots of the round trips and of the payload sweep, drawn with plotters' bitmap backend
//! and a font shipped with the harness (no system font library needed).

use std::path::Path;

use plotters::prelude::*;
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
