//! Reports over finished runs: the paper's tables regenerated beside its
//! own numbers, figures, and the claims check. Written to
//! `reports/<name>/index.md` and a self-contained `index.html` (figures
//! beside them as SVG and PNG; every user-supplied string escaped).
//!
//! Rough outline: collect every evaluation of the chosen runs
//! ([`collect`]), build the tables ([`tables`]), draw the figures
//! ([`figures`]), render them as Markdown and as HTML (maud, which escapes every string).

pub mod claims;
pub mod collect;
pub mod compare;
pub mod figures;
pub mod paper;
pub mod stats;
pub mod tables;

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::runs::RunRecord;
use crate::spec::StageKind;
use tables::Table;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("figure `{name}`: {message}")]
    Figure { name: String, message: String },
    #[error("no successful runs to report on")]
    Empty,
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
}

/// What was written.
#[derive(Debug, serde::Serialize)]
pub struct Written {
    pub dir: PathBuf,
    pub tables: Vec<String>,
    pub figures: Vec<String>,
}

/// Render a report of `runs` into `out`.
pub fn generate(
    name: &str,
    runs: &[RunRecord],
    cache: &Cache,
    out: &Path,
) -> Result<Written, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::Empty);
    }
    let fig_dir = out.join("figures");
    std::fs::create_dir_all(&fig_dir).map_err(|source| crate::file_error::FileError::Write {
        path: fig_dir.clone(),
        source,
    })?;
    figures::register_font();
    let all_evals = collect::evaluations(runs, cache);
    // As `exp claims` counts them: runs of an edited paper spec left out.
    let claims = claims::check(&claims::as_the_files_read(runs.to_vec()).0);
    let tables = tables_of(runs, &all_evals, &claims, cache);
    // Figures, like the paper's tables, show one configuration.
    let evals = shown_config(runs, &all_evals).1;

    let mut figs: Vec<(String, Vec<String>)> = Vec::new();
    let fig = |name: &str, r: Result<Vec<String>, String>| {
        r.map_err(|message| ReportError::Figure {
            name: name.into(),
            message,
        })
    };
    // The claims' intervals first: the verdicts at a glance.
    let rows: Vec<figures::IntervalRow> = claims
        .iter()
        .filter_map(|c| {
            let (i, threshold) = (c.interval?, c.threshold?);
            Some(figures::IntervalRow {
                label: c.claim.clone(),
                mean: i.mean,
                low: i.low,
                high: i.high,
                threshold,
                verdict: c.verdict.as_str(),
            })
        })
        .collect();
    if !rows.is_empty() {
        figs.push((
            "Claims: each tested difference's 95% interval (dot: the mean over seeds; dashed: the threshold it must clear; green supported, red contradicted, grey inconclusive)".into(),
            fig("claims", figures::intervals(&fig_dir, "claims", "Claims on these runs", &rows))?,
        ));
    }
    // Training curves: validation accuracy per epoch, the mean over runs
    // (seeds) of each stage, so one figure shows every arm. A stage cached
    // in several runs counts once per run, like its evaluations.
    let mut sums: std::collections::BTreeMap<(String, u32), (f64, f64, usize)> = Default::default();
    for run in runs {
        for (stage, metric, epoch, value) in collect::epochs(run, cache) {
            let keep = metric == "val_accuracy"
                || (metric.ends_with("/val_accuracy")
                    && !metric.starts_with("part")
                    && !metric.starts_with("hint"));
            if keep {
                let label = format!(
                    "{stage} {}",
                    metric
                        .trim_end_matches("val_accuracy")
                        .trim_end_matches('/')
                );
                let e = sums.entry((label.trim().to_string(), epoch)).or_default();
                e.0 += 100.0 * value;
                e.1 += (100.0 * value).powi(2);
                e.2 += 1;
            }
        }
    }
    // Mean and (sample) standard deviation over the runs, per epoch.
    let mut series: std::collections::BTreeMap<String, Vec<(f64, f64, f64)>> = Default::default();
    for ((label, epoch), (sum, squares, n)) in sums {
        let mean = sum / n as f64;
        let std = if n > 1 {
            ((squares - n as f64 * mean * mean) / (n - 1) as f64)
                .max(0.0)
                .sqrt()
        } else {
            0.0
        };
        series
            .entry(label)
            .or_default()
            .push((epoch as f64, mean, std));
    }
    if !series.is_empty() {
        let s: Vec<(String, Vec<(f64, f64, f64)>)> = series.into_iter().collect();
        let title = if runs.len() > 1 {
            format!(
                "Validation accuracy per epoch (mean ± std of {} runs)",
                runs.len()
            )
        } else {
            "Validation accuracy per epoch".to_string()
        };
        figs.push((
            "Training curves (validation accuracy, mean over runs; the band is ± one standard deviation)".into(),
            fig("curves", figures::curves(&fig_dir, "curves", &title, &s))?,
        ));
    }
    // Per-attribute accuracy, mean over runs, one bar per evaluate stage.
    let stages: Vec<String> = evals
        .iter()
        .map(|e| e.stage.clone())
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    let mut attrs: Vec<String> = Vec::new();
    for e in &evals {
        for r in &e.attributes {
            if !attrs.contains(&r.attribute) {
                attrs.push(r.attribute.clone());
            }
        }
    }
    // At most six bars per attribute stay readable: the first six stages.
    let shown = stages.len().min(6);
    let caption = if shown < stages.len() {
        format!(
            "Per-attribute test accuracy (mean over runs; the first {shown} of {} evaluation stages)",
            stages.len()
        )
    } else {
        "Per-attribute test accuracy (mean over runs)".to_string()
    };
    let stages: Vec<String> = stages.into_iter().take(shown).collect();
    if !attrs.is_empty() {
        let rows: Vec<(String, Vec<f64>)> = attrs
            .iter()
            .map(|a| {
                let v = stages
                    .iter()
                    .map(|s| {
                        let xs: Vec<f64> = evals
                            .iter()
                            .filter(|e| &e.stage == s)
                            .filter_map(|e| {
                                e.attributes
                                    .iter()
                                    .find(|r| &r.attribute == a)
                                    .map(|r| 100.0 * r.accuracy)
                            })
                            .collect();
                        if xs.is_empty() {
                            f64::NAN
                        } else {
                            claims::mean_std(&xs).0
                        }
                    })
                    .collect();
                (a.clone(), v)
            })
            .collect();
        figs.push((
            caption,
            fig(
                "attributes",
                figures::bars(
                    &fig_dir,
                    "attributes",
                    "Per-attribute accuracy",
                    "test accuracy (%)",
                    &stages,
                    &rows,
                ),
            )?,
        ));
    }
    // Figures 5 and 6 from the first run with fused PaW weights.
    if let Some((fusion, labels)) = runs.iter().find_map(|r| fusion_of(r, cache)) {
        let rsl = &fusion["rsl"];
        let m = labels.len();
        let rows: Vec<(String, Vec<f64>)> = (0..m)
            .map(|j| {
                (
                    labels[j].clone(),
                    vec![
                        rsl[0][j].as_f64().unwrap_or(f64::NAN),
                        rsl[j + 1][j].as_f64().unwrap_or(f64::NAN),
                    ],
                )
            })
            .collect();
        figs.push((
            "Figure 5: RSL weights, whole-image subnet vs the attribute's own part subnet".into(),
            fig(
                "rsl",
                figures::bars(
                    &fig_dir,
                    "rsl",
                    "Region switch layer weights",
                    "RSL weight",
                    &[
                        "whole-image subnet".into(),
                        "the attribute's part subnet".into(),
                    ],
                    &rows,
                ),
            )?,
        ));
        let arl: Vec<Vec<f32>> = (0..m)
            .map(|j| {
                (0..m)
                    .map(|i| fusion["arl"][j][i].as_f64().unwrap_or(0.0) as f32)
                    .collect()
            })
            .collect();
        figs.push(("Figure 6: attribute relation layer weights (row: output attribute; red positive, blue negative)".into(), fig("arl", figures::heatmap(&fig_dir, "arl", "Attribute relation layer", &labels, &arl))?));
    }
    // Figure 4: CAM heatmaps written by `localize`.
    if let Some(dir) = runs.iter().find_map(|r| {
        r.stages
            .iter()
            .find(|s| s.kind == "localize")
            .and_then(|s| collect::entry_dir(cache, r, &s.id))
    }) {
        let mut pngs: Vec<String> = std::fs::read_dir(dir.join("heatmaps"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        pngs.sort();
        let names: Vec<String> = std::fs::read(dir.join("heatmaps.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v["attributes"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default();
        let mut copied = Vec::new();
        for p in pngs.iter().take(4) {
            let src = dir.join("heatmaps").join(p);
            let strip = image::open(&src)
                .map_err(|e| crate::file_error::FileError::Write {
                    path: src.clone(),
                    source: std::io::Error::other(e),
                })?
                .to_rgb8();
            let stem = format!("cam_{}", p.trim_end_matches(".png"));
            // Tiles are the input size (64 px on CPU): enlarge so faces are visible.
            copied.extend(fig(
                &stem,
                figures::cam_strip(&fig_dir, &stem, &strip, &names, 160),
            )?);
        }
        if !copied.is_empty() {
            figs.push((
                format!("Figure 4: CAM heatmaps (image, then {})", names.join(", ")),
                copied,
            ));
        }
    }

    let md = markdown(name, runs, &tables, &figs);
    let html = html(name, runs, &tables, &figs, &fig_dir).into_string();
    for (file, text) in [("index.md", md), ("index.html", html)] {
        let path = out.join(file);
        std::fs::write(&path, text)
            .map_err(|source| crate::file_error::FileError::Write { path, source })?;
    }
    Ok(Written {
        dir: out.to_path_buf(),
        tables: tables.iter().map(|t| t.title.clone()).collect(),
        figures: figs.into_iter().flat_map(|f| f.1).collect(),
    })
}

/// The tables of a report on `runs` (what `exp ui` shows too): the runs,
/// every evaluation, the paper's tables that these runs fill, what differs
/// between them, localisation, and the claims.
pub fn tables(runs: &[RunRecord], cache: &Cache) -> Vec<Table> {
    let claims = claims::check(&claims::as_the_files_read(runs.to_vec()).0);
    tables_of(runs, &collect::evaluations(runs, cache), &claims, cache)
}

/// The paper's tables pool seeds of one configuration: the first spec's
/// (of several), as written if it ran, else its first; the evaluations
/// table has them all.
fn shown_config(
    runs: &[RunRecord],
    evals: &[collect::Evaluation],
) -> (String, Vec<collect::Evaluation>) {
    let first = runs.first().map(|r| r.name.as_str());
    let of_first = |e: &&collect::Evaluation| {
        runs.iter().find(|r| r.id == e.run).map(|r| r.name.as_str()) == first
    };
    let shown = evals
        .iter()
        .filter(of_first)
        .map(|e| e.config.as_str())
        .min()
        .or_else(|| evals.iter().map(|e| e.config.as_str()).min())
        .unwrap_or_default()
        .to_string();
    let evals = evals
        .iter()
        .filter(|e| e.config == shown)
        .cloned()
        .collect();
    (shown, evals)
}

fn tables_of(
    runs: &[RunRecord],
    evals: &[collect::Evaluation],
    claims: &[claims::Claim],
    cache: &Cache,
) -> Vec<Table> {
    let mut tables: Vec<Table> = vec![runs_table(runs), tables::evaluations(evals)];
    let configs: std::collections::BTreeSet<&str> =
        evals.iter().map(|e| e.config.as_str()).collect();
    let (shown, evals) = shown_config(runs, evals);
    let first_paper_table = tables.len();
    let has = |f: &dyn Fn(&collect::Evaluation) -> bool| evals.iter().any(f);
    // The paper's tables appear when the runs are the paper's system.
    let paper = has(&|e| e.model_kind != Some(StageKind::Train));
    if has(&|e| e.model_kind == Some(StageKind::TrainFrl) && !e.single_label) {
        tables.push(tables::table1(&evals));
    }
    if has(&|e| e.single_label) {
        tables.push(tables::table2(&evals));
    }
    if has(&|e| {
        matches!(
            e.model_kind,
            Some(StageKind::TrainFrl | StageKind::Compress)
        ) && !e.single_label
    }) {
        tables.push(tables::table3(&evals));
    }
    // Table 4 sets SNet3 beside other authors' compact face models: only
    // where a compressed net ran on faces.
    if paper && has(&|e| e.model_kind == Some(StageKind::Compress) && !e.single_label) {
        tables.push(tables::table4());
    }
    if has(&|e| e.table5.is_some()) {
        tables.push(tables::table5(&evals));
    }
    if has(&|e| !e.single_label && !e.attributes.is_empty()) {
        tables.push(tables::balanced(&evals));
    }
    if has(&|e| e.grid.is_some()) {
        tables.push(tables::blocks(&evals));
    }
    if configs.len() > 1 {
        let which = if shown.is_empty() {
            "the spec as written".to_string()
        } else {
            format!("`{shown}`")
        };
        for t in &mut tables[first_paper_table..] {
            t.notes.push(format!(
                "Runs of {} configurations: this table shows {which}; the evaluations table lists each.",
                configs.len()
            ));
        }
    }
    if runs.len() > 1 {
        let changed = compare::changed_params(runs);
        let mut header = vec!["parameter".to_string()];
        header.extend(runs.iter().map(|r| r.id.clone()));
        tables.push(Table {
            title: "Parameters that differ between these runs".into(),
            header,
            rows: changed
                .into_iter()
                .map(|(k, v)| std::iter::once(k).chain(v).collect())
                .collect(),
            notes: vec![],
        });
    }
    if let Some(t) = localisation(runs, cache) {
        tables.push(t);
    }
    tables.push(Table {
        title: "Claims on these runs".into(),
        header: vec![
            "claim".into(),
            "seeds".into(),
            "ours".into(),
            "tested: 95% interval".into(),
            "paper".into(),
            "verdict".into(),
        ],
        rows: claims
            .iter()
            .filter(|c| c.seeds > 0)
            .map(|c| {
                vec![
                    c.claim.clone(),
                    c.seeds.to_string(),
                    c.ours.clone(),
                    c.interval_cell().replace('\n', "; "),
                    c.paper.clone(),
                    c.verdict.as_str().into(),
                ]
            })
            .collect(),
        notes: vec![format!("{}.", claims::RULE)],
    });
    tables
}

fn fusion_of(run: &RunRecord, cache: &Cache) -> Option<(serde_json::Value, Vec<String>)> {
    // The last fused PaW with FRL parts (not a block grid): finetuned if there is one.
    let v: serde_json::Value = run
        .stages
        .iter()
        .rev()
        .filter(|s| s.kind == "finetune-paw" || s.kind == "train-fusion")
        .find_map(|s| {
            let dir = collect::entry_dir(cache, run, &s.id)?;
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("fusion.json")).ok()?).ok()?;
            v["grid"].is_null().then_some(v)
        })?;
    let labels = v["attributes"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    Some((v, labels))
}

/// Pointing game per attribute (mean over runs) from `localize` stages.
fn localisation(runs: &[RunRecord], cache: &Cache) -> Option<Table> {
    // Pooled over seeds only: each configuration and each localize stage
    // (the CAM's patches, fixed or ground-truth ones) is its own group.
    type Group = (String, String);
    let mut per: std::collections::BTreeMap<(Group, String), Vec<f64>> = Default::default();
    let mut boxes: std::collections::BTreeMap<(Group, String), Vec<f64>> = Default::default();
    let mut seen = std::collections::BTreeSet::new();
    let configs = collect::configurations(runs);
    for r in runs {
        for s in r.stages.iter().filter(|s| s.kind == "localize") {
            if !seen.insert(s.key.clone()) {
                continue;
            }
            let Some(dir) = collect::entry_dir(cache, r, &s.id) else {
                continue;
            };
            let group = (configs[&r.id].clone(), s.id.clone());
            for crate::metrics::store::LocalisationRow {
                attribute: a,
                rate: v,
                ..
            } in crate::metrics::store::read_localisation(&dir.join("pointing.parquet"))
                .unwrap_or_default()
            {
                if v.is_finite() {
                    per.entry((group.clone(), a)).or_default().push(100.0 * v);
                }
            }
            for crate::metrics::store::LocalisationRow {
                attribute: a,
                rate: v,
                ..
            } in crate::metrics::store::read_localisation(&dir.join("maxboxacc.parquet"))
                .unwrap_or_default()
            {
                if v.is_finite() {
                    boxes.entry((group.clone(), a)).or_default().push(100.0 * v);
                }
            }
        }
    }
    if per.is_empty() {
        return None;
    }
    let groups: std::collections::BTreeSet<&Group> = per.keys().map(|(g, _)| g).collect();
    let configs: std::collections::BTreeSet<&String> = groups.iter().map(|g| &g.0).collect();
    let (show_config, show_stage) = (configs.len() > 1, groups.len() > configs.len());
    let rows = per
        .iter()
        .map(|((g, a), v)| {
            let b = boxes
                .get(&(g.clone(), a.clone()))
                .map_or("—".to_string(), |b| mean_and_spread(b));
            let mut row = Vec::new();
            if show_config {
                row.push(if g.0.is_empty() {
                    "(as written)".into()
                } else {
                    g.0.clone()
                });
            }
            if show_stage {
                row.push(g.1.clone());
            }
            row.extend([a.clone(), mean_and_spread(v), b, v.len().to_string()]);
            row
        })
        .collect();
    let mut header = Vec::new();
    if show_config {
        header.push("configuration".to_string());
    }
    if show_stage {
        header.push("stage".to_string());
    }
    header.extend(["attribute", "pointing game", "MaxBoxAcc", "runs"].map(String::from));
    Some(Table {
        title: "Localisation: pointing game (%) of the FRL CAM peaks on the test split".into(),
        header,
        rows,
        notes: vec![
            "Pointing game: a hit when the CAM's peak lies within 15 px at 224 (scaled) of the attribute's ground-truth region; images where the attribute is present.".into(),
            "MaxBoxAcc: the box of the largest region above a threshold of the CAM overlaps the ground truth with IoU >= 0.5; the threshold is chosen on val, reported on test.".into(),
            "Mean ± std over seeds, each configuration and localize stage on its own.".into(),
        ],
    })
}

/// The exp build a run ran on (`abc1234567`, `+dirty` where built from a
/// dirty tree); for records from before builds were recorded, the
/// working directory's commit at the run's start.
fn build_of(r: &RunRecord) -> String {
    let short = |c: &str| {
        let (hash, mark) = c.split_once('+').map_or((c, ""), |(h, _)| (h, "+dirty"));
        format!("{}{mark}", hash.chars().take(10).collect::<String>())
    };
    match (&r.exp_build, &r.git_commit) {
        (Some(b), _) => short(b),
        (None, Some(c)) => format!(
            "{} (checkout{})",
            short(c),
            if r.git_dirty == Some(true) {
                ", dirty"
            } else {
                ""
            }
        ),
        (None, None) => "-".into(),
    }
}

fn runs_table(runs: &[RunRecord]) -> Table {
    let builds: std::collections::BTreeSet<String> = runs.iter().map(build_of).collect();
    let unsure = |b: &String| b.contains("dirty") || b.starts_with("unknown") || b == "-";
    let notes = if builds.len() > 1 || builds.iter().any(unsure) {
        vec!["These runs come from different builds of exp, or from a build whose commit is unknown or dirty: cached stages are shared only when their inputs match, but code outside the stage kinds' versions may differ.".into()]
    } else {
        vec![]
    };
    Table {
        title: "Runs".into(),
        header: vec![
            "run".into(),
            "point / overrides".into(),
            "status".into(),
            "exp build".into(),
            "stages ran / cached".into(),
        ],
        rows: runs
            .iter()
            .map(|r| {
                let ran = r.stages.iter().filter(|s| s.status == "ran").count();
                let cached = r.stages.iter().filter(|s| s.status == "cached").count();
                // A sweep point, or the overrides a single run was made with.
                let point = if r.point.is_empty() {
                    r.overrides.join(" ")
                } else {
                    r.point.join(" ")
                };
                vec![
                    r.id.clone(),
                    point,
                    r.status.clone(),
                    build_of(r),
                    format!("{ran} / {cached}"),
                ]
            })
            .collect(),
        notes,
    }
}

/// `index.md`: the figures beside it in `figures/`.
fn markdown(
    name: &str,
    runs: &[RunRecord],
    tables: &[Table],
    figs: &[(String, Vec<String>)],
) -> String {
    use tables::markdown_escape as esc;
    let mut out = format!("# {}\n\n{}\n", esc(name), esc(&runs[0].title));
    for t in tables {
        out.push_str(&t.markdown());
    }
    out.push_str("\n### Figures\n\n");
    for (caption, files) in figs {
        // PNG inline; the SVG beside it for print.
        for f in files.iter().filter(|f| f.ends_with(".png")) {
            out.push_str(&format!("\n![{}](figures/{f})\n", esc(caption)));
        }
    }
    out
}

/// `index.html`: one file that stands alone, its figures embedded.
fn html(
    name: &str,
    runs: &[RunRecord],
    tables: &[Table],
    figs: &[(String, Vec<String>)],
    fig_dir: &Path,
) -> maud::Markup {
    const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;}\
        table{border-collapse:collapse;margin:.5em 0;}\
        td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;}\
        .note{color:#555;font-size:90%;}img{max-width:100%;}";
    let png = |f: &str| {
        std::fs::read(fig_dir.join(f))
            .map(|b| base64(&b))
            .unwrap_or_default()
    };
    maud::html! {
        (maud::DOCTYPE) "\n"
        html {
            head {
                meta charset="utf-8";
                title { (name) }
                style { (maud::PreEscaped(STYLE)) }
            } "\n"
            body {
                "\n"
                h1 { (name) } "\n"
                p { (runs[0].title) } "\n"
                @for t in tables { (t.html()) }
                h3 { "Figures" } "\n"
                @for (caption, files) in figs {
                    @for f in files.iter().filter(|f| f.ends_with(".png")) {
                        figure {
                            img src={ "data:image/png;base64," (png(f)) } alt=(caption);
                            figcaption { (caption) }
                        } "\n"
                    }
                }
            }
        }
    }
}

/// Standard base64 (RFC 4648) with padding.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `mean ± std` over runs; one run has no spread to show (not "± 0.0").
fn mean_and_spread(v: &[f64]) -> String {
    let (m, s) = claims::mean_std(v);
    if v.len() < 2 {
        format!("{m:.1}")
    } else {
        format!("{m:.1} ± {s:.1}")
    }
}

#[cfg(test)]
mod spread_tests {
    use super::mean_and_spread;

    #[test]
    fn one_run_shows_its_value_and_several_their_spread() {
        assert_eq!(mean_and_spread(&[71.14]), "71.1");
        assert!(mean_and_spread(&[70.0, 72.0]).starts_with("71.0 ± 1."));
    }
}

#[cfg(test)]
mod build_tests {
    use super::{RunRecord, build_of, runs_table};

    fn record(build: Option<&str>, commit: Option<&str>, dirty: Option<bool>) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "id": "r", "name": "n", "title": "n", "spec_path": "x.toml", "overrides": [],
            "started": "", "finished": null, "device": "cpu", "git_commit": commit,
            "git_dirty": dirty, "status": "ok", "spec": {}, "stages": [], "exp_build": build,
        }))
        .unwrap()
    }

    #[test]
    fn a_run_is_named_by_its_build_else_by_the_checkout_it_ran_in() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(build_of(&record(Some(hash), None, None)), "0123456789");
        let dirty = format!("{hash}+dirty");
        assert_eq!(
            build_of(&record(Some(&dirty), Some("f00"), Some(false))),
            "0123456789+dirty"
        );
        assert_eq!(build_of(&record(Some("unknown"), None, None)), "unknown");
        assert_eq!(
            build_of(&record(None, Some(hash), Some(true))),
            "0123456789 (checkout, dirty)"
        );
        assert_eq!(build_of(&record(None, None, None)), "-");
        // Not a hash (a hand-edited record): shown, not sliced mid-character.
        assert_eq!(build_of(&record(Some("ééééééé"), None, None)), "ééééééé");
    }

    #[test]
    fn an_unknown_or_dirty_build_is_flagged_even_when_every_run_shares_it() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert!(
            runs_table(&[record(Some(hash), None, None)])
                .notes
                .is_empty()
        );
        assert_eq!(
            runs_table(&[record(Some("unknown"), None, None)])
                .notes
                .len(),
            1
        );
        let dirty = format!("{hash}+dirty");
        assert_eq!(
            runs_table(&[record(Some(&dirty), None, None)]).notes.len(),
            1
        );
    }
}
