//! results.png: six bar charts (log scale) of the latest results — ingest
//! throughput against the ceiling, latency, /stats against the seed's SQL,
//! catch-up against COPY, memory — with the targets drawn as red lines.
//! Text is drawn with DejaVu Sans, registered at run time; without it the
//! plot is written as SVG (results.svg), whose text the viewer renders.

use crate::report::{int, Results};
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const COLORS: [RGBColor; 6] = [
    RGBColor(90, 90, 90),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

struct Series {
    name: String,
    values: Vec<Option<f64>>,
    /// Palette index and whether to draw the colour lighter (p50 beside p99).
    color: Option<(usize, bool)>,
}

struct Panel {
    title: String,
    y_desc: String,
    groups: Vec<String>,
    series: Vec<Series>,
    /// A horizontal line: value and label.
    target: Option<(f64, String)>,
}

pub(crate) fn register_font() -> bool {
    for p in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Writes results.png (or results.svg without a font); the path written.
pub fn plot(r: &Results, dir: &Path) -> Result<PathBuf> {
    let panels = panels(r);
    let caption = caption(r);
    if register_font() {
        let path = dir.join("results.png");
        {
            let root = BitMapBackend::new(&path, (1800, 1000)).into_drawing_area();
            draw(&root, &caption, &panels)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
        }
        Ok(path)
    } else {
        let path = dir.join("results.svg");
        {
            let root = SVGBackend::new(&path, (1800, 1000)).into_drawing_area();
            draw(&root, &caption, &panels)?;
            root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
        }
        Ok(path)
    }
}

fn caption(r: &Results) -> String {
    let mut parts = vec![format!(
        "analytics bench — {} cores, commit {}, {}",
        r.machine.nproc, r.machine.git_commit, r.machine.date
    )];
    if let Some(f) = r.freshness() {
        parts.push(format!(
            "freshness at {} events/s: p50 {:.0} ms, p99 {:.0} ms",
            int(f.background.events_per_s),
            f.freshness.p50_ms,
            f.freshness.p99_ms
        ));
    }
    if r.scenarios.values().any(|e| e.quick) {
        parts.push("(some scenarios quick / scaled down)".into());
    }
    parts.join("   ·   ")
}

fn panels(r: &Results) -> Vec<Panel> {
    let mut out = Vec::new();
    let ingest = r.ingest();
    let targets: Vec<_> = ingest
        .as_ref()
        .map(|i| i.targets.iter().filter(|t| t.error.is_none()).collect())
        .unwrap_or_default();
    let value =
        |t: &crate::scenarios::ingest::IngestTarget, shape: &str, f: &dyn Fn(&crate::loadgen::LoadResult) -> f64| {
            t.runs.iter().find(|x| x.shape == shape).map(|x| f(&x.load))
        };
    out.push(Panel {
        title: "Ingest, batches: events/s".into(),
        y_desc: "events/s".into(),
        groups: vec!["batch 1000".into(), "batch 100".into()],
        series: targets
            .iter()
            .map(|t| Series {
                name: t.target.clone(),
                values: ["batch 1000", "batch 100"]
                    .iter()
                    .map(|s| value(t, s, &|l| l.events_per_s))
                    .collect(),
                color: None,
            })
            .collect(),
        target: Some((150_000.0, "target 150k".into())),
    });
    out.push(Panel {
        title: "Ingest, single events: req/s".into(),
        y_desc: "requests/s".into(),
        groups: vec!["single".into()],
        series: targets
            .iter()
            .map(|t| Series {
                name: t.target.clone(),
                values: vec![value(t, "single", &|l| l.req_per_s)],
                color: None,
            })
            .collect(),
        target: Some((25_000.0, "target 25k".into())),
    });
    out.push(Panel {
        title: "Ingest latency at max rate: p50 / p99 (ms)".into(),
        y_desc: "ms".into(),
        groups: vec!["batch 1000".into(), "batch 100".into(), "single".into()],
        series: targets
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                [("p50", false), ("p99", true)].map(|(q, p99)| Series {
                    color: Some((i, !p99)),
                    name: format!("{} {q}", t.target),
                    values: ["batch 1000", "batch 100", "single"]
                        .iter()
                        .map(|s| value(t, s, &|l| if p99 { l.latency.p99_ms } else { l.latency.p50_ms }))
                        .collect(),
                })
            })
            .collect(),
        target: None,
    });
    if let Some(q) = r.queries() {
        let range = format!("{} days", q.dataset.days);
        let sets = [
            ("day", false),
            (range.as_str(), false),
            ("day", true),
            (range.as_str(), true),
        ];
        let groups = sets
            .iter()
            .map(|(p, l)| format!("{p}{}", if *l { ", largest" } else { "" }))
            .collect();
        let series = [
            ("/stats", "p50"),
            ("/stats", "p99"),
            ("seed SQL", "p50"),
            ("seed SQL", "p99"),
        ]
        .iter()
        .map(|(sys, qn)| Series {
            color: Some((if *sys == "/stats" { 1 } else { 0 }, *qn == "p50")),
            name: format!("{sys} {qn}"),
            values: sets
                .iter()
                .map(|(p, l)| {
                    q.set(sys, p, *l).map(|s| {
                        if *qn == "p50" {
                            s.latency.p50_ms
                        } else {
                            s.latency.p99_ms
                        }
                    })
                })
                .collect(),
        })
        .collect();
        out.push(Panel {
            title: format!("/stats vs seed SQL at {} events (ms)", int(q.dataset.events as f64)),
            y_desc: "ms".into(),
            groups,
            series,
            target: Some((5.0, "target 5 ms".into())),
        });
    }
    if let Some(c) = r.catchup() {
        out.push(Panel {
            title: format!("Catch-up of {} events: rows/s", int(c.events_acked as f64)),
            y_desc: "rows/s".into(),
            groups: vec!["rows/s".into()],
            series: vec![
                Series {
                    name: "processor (with rollups)".into(),
                    values: vec![Some(c.rows_per_s_from_first_row)],
                    color: Some((1, false)),
                },
                Series {
                    name: "COPY, same indexes".into(),
                    values: vec![Some(c.copy_indexed.rows_per_s)],
                    color: Some((0, false)),
                },
                Series {
                    name: "COPY, no index".into(),
                    values: vec![Some(c.copy_bare.rows_per_s)],
                    color: Some((0, true)),
                },
            ],
            target: Some((c.copy_indexed.rows_per_s * 0.5, "50% of COPY".into())),
        });
    }
    if !targets.is_empty() {
        let procs: Vec<(String, Option<f64>)> = targets
            .iter()
            .flat_map(|t| {
                t.hwm_mb
                    .iter()
                    .map(|(p, v)| {
                        let name = match (t.target.strip_prefix("api "), p.as_str()) {
                            (Some(mode), "api") => format!("api {mode}"),
                            (Some(mode), other) => format!("{other} {mode}"),
                            (None, _) => t.target.clone(),
                        };
                        (name, Some(*v))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.push(Panel {
            title: "Peak RSS under ingest load (VmHWM, MB)".into(),
            y_desc: "MB".into(),
            groups: vec!["peak RSS".into()],
            series: procs
                .into_iter()
                .map(|(name, v)| Series {
                    name,
                    values: vec![v],
                    color: None,
                })
                .collect(),
            target: Some((100.0, "api target 100 MB".into())),
        });
    }
    out
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, caption: &str, panels: &[Panel]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (top, body) = root.split_vertically(40);
    top.draw(&Text::new(
        caption,
        (15, 10),
        ("sans-serif", 20).into_font().color(&BLACK),
    ))
    .map_err(|e| anyhow!("{e}"))?;
    let areas = body.split_evenly((2, 3));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let values: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .chain(p.target.iter().map(|t| t.0))
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if values.is_empty() || p.series.is_empty() {
        area.draw(&Text::new(
            format!("{}: no data", p.title),
            (20, 20),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(err)?;
        return Ok(());
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = (
        10f64.powf((lo / 2.0).log10().floor()),
        10f64.powf((hi * 12.0).log10().ceil()),
    );
    let per_group = p.series.len() + 1;
    let slots = i32::try_from(p.groups.len() * per_group).unwrap_or(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d((0..slots).into_segmented(), (lo..hi).log_scale())
        .map_err(err)?;
    let groups = p.groups.clone();
    let centre = (p.series.len().saturating_sub(1)) / 2;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(usize::try_from(slots).unwrap_or(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => {
                let k = usize::try_from(*k).unwrap_or(0);
                if k % per_group == centre {
                    groups.get(k / per_group).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            SegmentValue::Last => String::new(),
        })
        .y_desc(&p.y_desc)
        .y_label_formatter(&|v| short(*v))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for (j, s) in p.series.iter().enumerate() {
        let color = match s.color {
            None => COLORS[j % COLORS.len()],
            Some((i, light)) => {
                let c = COLORS[i % COLORS.len()];
                if light {
                    lighter(c)
                } else {
                    c
                }
            }
        };
        let bars: Vec<(i32, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(g, v)| {
                v.filter(|v| *v > 0.0)
                    .map(|v| (i32::try_from(g * per_group + j).unwrap_or(0), v))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|(x, v)| {
                Rectangle::new(
                    [(SegmentValue::Exact(*x), lo), (SegmentValue::Exact(x + 1), *v)],
                    color.filled(),
                )
            }))
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|(x, v)| {
                Text::new(
                    short(*v),
                    (SegmentValue::Exact(*x), *v * 1.15),
                    ("sans-serif", 12).into_font(),
                )
            }))
            .map_err(err)?;
    }
    if let Some((t, label)) = &p.target {
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), *t), (SegmentValue::Exact(slots), *t)],
                RED.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.clone())
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| u8::try_from((u16::from(v) + 2 * 255) / 3).unwrap_or(255);
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// 1.2M, 150k, 950, 4.2, 0.31 (no trailing ".0").
fn short(v: f64) -> String {
    let s = short_raw(v);
    match s.find(".0") {
        Some(i) if !s[i + 2..].starts_with(|c: char| c.is_ascii_digit()) => format!("{}{}", &s[..i], &s[i + 2..]),
        _ => s,
    }
}

fn short_raw(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_numbers() {
        assert_eq!(short(1_700_000.0), "1.7M");
        assert_eq!(short(152_000.0), "152k");
        assert_eq!(short(2_500.0), "2.5k");
        assert_eq!(short(42.4), "42");
        assert_eq!(short(4.24), "4.2");
        assert_eq!(short(0.314), "0.31");
        assert_eq!(short(100_000_000.0), "100M");
        assert_eq!(short(1000.0), "1k");
        assert_eq!(short(1.0), "1");
    }
}
