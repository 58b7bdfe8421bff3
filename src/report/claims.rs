//! The paper's claims, checked on the latest successful run of every seed of
//! the paper's specs, run as written (overrides other than the seed make a
//! run a different experiment and are not evidence).
//!
//! Each comparison is tested on the paired per-seed differences with a 95%
//! Student-t interval ([`super::stats`]): *supported* when the interval
//! excludes the claim's threshold on its side, *contradicted* when it
//! excludes it on the other, *inconclusive* otherwise, *n/a* with one seed.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::stats::mean_std;
use super::stats::{Interval, Verdict, seeds_to_resolve};
use crate::metrics::{CompressSummary, PawSummary};
use crate::runs::RunRecord;

/// How verdicts are reached, printed under every claims table.
pub const RULE: &str = "supported / contradicted: the 95% t interval of the paired per-seed difference lies on the claim's / the other side of its threshold; inconclusive: it contains it; n/a: one seed";

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub claim: String,
    pub spec: String,
    pub seeds: usize,
    /// The numbers compared, mean ± std over seeds, e.g. `PaW 88.10 ± 0.30 vs …`.
    pub ours: String,
    /// What the interval is of, e.g. `PaW − max(Part-only, Whole-only)`.
    pub tested: String,
    /// 95% interval of the tested quantity (percentage points), ≥ 2 seeds.
    pub interval: Option<Interval>,
    pub paper: String,
    /// The paper's value of the tested quantity, where it has one.
    pub paper_difference: Option<f64>,
    /// Seeds a 95% interval needs to resolve the paper's difference, from
    /// this run's standard deviation of the paired differences.
    pub seeds_to_resolve_paper: Option<usize>,
    pub verdict: Verdict,
}

impl Claim {
    /// The tested quantity, its interval and the seeds the paper's difference
    /// needs, one per line.
    pub fn interval_cell(&self) -> String {
        let mut s = self.tested.clone();
        if let Some(i) = self.interval {
            s += &format!("\n{i}");
        }
        if let Some(n) = self.seeds_to_resolve_paper {
            s += &format!("\n{n} seeds resolve the paper's difference");
        }
        s
    }

    fn new(
        claim: &str,
        spec: &str,
        tested: &str,
        paper: &str,
        paper_difference: Option<f64>,
    ) -> Self {
        Claim {
            claim: claim.into(),
            spec: spec.into(),
            seeds: 0,
            ours: "no successful runs".into(),
            tested: tested.into(),
            interval: None,
            paper: paper.into(),
            paper_difference: paper_difference.filter(|d| d.is_finite()),
            seeds_to_resolve_paper: None,
            verdict: Verdict::Missing,
        }
    }

    /// Judge `values` (one per seed) against `threshold`: the claim is that
    /// the true mean lies above it (`above`) or below it.
    fn judge(mut self, ours: String, values: &[f64], threshold: f64, above: bool) -> Self {
        self.seeds = values.len();
        if values.is_empty() {
            return self;
        }
        self.ours = ours;
        self.interval = Interval::of(values);
        self.verdict = match self.interval {
            None => Verdict::NotApplicable,
            Some(i) if above => i.above(threshold),
            Some(i) => i.below(threshold),
        };
        self.seeds_to_resolve_paper = match (self.interval, self.paper_difference) {
            (Some(i), Some(d)) => seeds_to_resolve(i.std, (d - threshold).abs()),
            _ => None,
        };
        self
    }
}

/// Whether a run is the spec as written: at most its seed was overridden,
/// and every stage ran (not `exp run --stage`).
fn as_written(r: &RunRecord) -> bool {
    r.spec.get("only").is_none()
        && r.overrides
            .iter()
            .chain(&r.point)
            .all(|o| o.starts_with("experiment.seed="))
}

/// The spec names the claims read.
pub const SPECS: [&str; 8] = [
    "ablation_mnl",
    "compression",
    "paw",
    "paw128",
    "paw_controls",
    "paw128_controls",
    "block_baseline",
    "cub_mnl",
];

/// Splits the claims' candidate runs into those whose recorded spec agrees
/// with their spec file as it now reads (with the run's seed) and those
/// whose does not, with why: after an edit to a paper spec, its older runs
/// are another experiment. Only the data and the stages both have are
/// compared, so adding a stage (a new control) keeps older runs. Runs of
/// other specs pass through.
pub fn as_the_files_read(runs: Vec<RunRecord>) -> (Vec<RunRecord>, Vec<(String, String)>) {
    let mut current: BTreeMap<(String, u64), Result<serde_json::Value, String>> = BTreeMap::new();
    let (mut kept, mut skipped) = (Vec::new(), Vec::new());
    for r in runs {
        if !SPECS.contains(&r.name.as_str()) || r.status != "ok" || !as_written(&r) {
            kept.push(r);
            continue;
        }
        let seed = r.spec["seed"].as_u64().unwrap_or(0);
        let now = current
            .entry((r.spec_path.clone(), seed))
            .or_insert_with(|| {
                crate::spec::load(
                    std::path::Path::new(&r.spec_path),
                    &[format!("experiment.seed={seed}")],
                )
                .map(|s| serde_json::to_value(&s).expect("a spec serializes"))
                .map_err(|e| e.to_string())
            });
        match now {
            Err(e) => skipped.push((
                r.id.clone(),
                format!("`{}` no longer loads: {e}", r.spec_path),
            )),
            Ok(now) => match spec_difference(&r.spec, now) {
                Some(why) => skipped.push((
                    r.id.clone(),
                    format!("`{}` now differs: {why}", r.spec_path),
                )),
                None => kept.push(r),
            },
        }
    }
    (kept, skipped)
}

/// Where a recorded spec and the current one disagree: the data, or a
/// stage both have.
fn spec_difference(then: &serde_json::Value, now: &serde_json::Value) -> Option<String> {
    if then["data"] != now["data"] {
        return Some("[data]".into());
    }
    let stages = |v: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
        v["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["id"].as_str()?.to_string(), s.clone())))
            .collect()
    };
    let (a, b) = (stages(then), stages(now));
    a.iter()
        .find(|(id, s)| b.get(*id).is_some_and(|t| t != *s))
        .map(|(id, _)| format!("stage `{id}`"))
}

/// Latest ok run per seed of a spec name.
/// The runs a claim uses: of spec `name`, as written (overrides other than
/// the seed are other experiments), the latest successful run of each seed.
pub fn latest_by_seed<'a>(runs: &'a [RunRecord], name: &str) -> Vec<&'a RunRecord> {
    let mut by_seed: BTreeMap<u64, &RunRecord> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.name == name && r.status == "ok" && as_written(r))
    {
        let seed = r.spec["seed"].as_u64().unwrap_or(0);
        by_seed.entry(seed).or_insert(r); // runs are newest first
    }
    by_seed.into_values().collect()
}

/// The typed summary of stage `stage` of a run, if it ran and is of that kind.
fn summary<T: serde::de::DeserializeOwned>(r: &RunRecord, stage: &str) -> Option<T> {
    let s = r.stages.iter().find(|s| s.id == stage)?;
    crate::metrics::summary_of(&s.summary)
}

fn acc(r: &RunRecord, stage: &str) -> Option<f64> {
    let s = r.stages.iter().find(|s| s.id == stage)?;
    crate::metrics::EvalSummary::of(&s.summary).map(|e| 100.0 * e.mean_accuracy)
}

fn pm(v: &[f64]) -> String {
    let (m, s) = mean_std(v);
    if v.len() < 2 {
        format!("{m:.2}")
    } else {
        format!("{m:.2} ± {s:.2}")
    }
}

/// Per-seed values of two stages, for the runs that have both.
fn pairs(
    runs: &[&RunRecord],
    a: impl Fn(&RunRecord) -> Option<f64>,
    b: impl Fn(&RunRecord) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    runs.iter().filter_map(|r| Some((a(r)?, b(r)?))).unzip()
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// "`a` beats `b`": the paired difference a − b is above 0.
fn beats(
    claim: &str,
    spec: &str,
    runs: &[&RunRecord],
    (a, na): (&str, &str),
    (b, nb): (&str, &str),
    paper: &str,
    paper_diff: f64,
) -> Claim {
    let (x, y) = pairs(runs, |r| acc(r, a), |r| acc(r, b));
    Claim::new(
        claim,
        spec,
        &format!("{na} − {nb}"),
        paper,
        Some(paper_diff),
    )
    .judge(
        format!("{na} {} vs {nb} {}", pm(&x), pm(&y)),
        &diff(&x, &y),
        0.0,
        true,
    )
}

pub fn check(runs: &[RunRecord]) -> Vec<Claim> {
    let mut out = Vec::new();

    let r = latest_by_seed(runs, "ablation_mnl");
    out.push(beats(
        "MNL raises the localisation branch's accuracy",
        "ablation_mnl",
        &r,
        ("eval-loc", "with MNL"),
        ("eval-plain", "without"),
        "91.07 vs 91.01",
        91.07 - 91.01,
    ));
    // Gradient-matched control: is MNL's effect more than a doubled loss?
    if r.iter().any(|r| acc(r, "eval-doubled").is_some()) {
        out.push(beats(
            "MNL beats a plain FRL with its loss doubled (gradient-matched control)",
            "ablation_mnl",
            &r,
            ("eval-loc", "with MNL"),
            ("eval-doubled", "2× loss"),
            "not in the paper",
            f64::NAN,
        ));
    }

    let r = latest_by_seed(runs, "compression");
    let (tnet, snet3) = pairs(&r, |r| acc(r, "eval-tnet"), |r| acc(r, "eval-snet3"));
    out.push(
        Claim::new(
            "SNet3 within 1 point of TNet",
            "compression",
            "TNet − SNet3 < 1",
            "91.07 vs 90.60",
            Some(91.07 - 90.60),
        )
        .judge(
            format!("TNet {} vs SNet3 {}", pm(&tnet), pm(&snet3)),
            &diff(&tnet, &snet3),
            1.0,
            false,
        ),
    );
    // Parameter ratio of the nets that ran (no seed noise: a plain comparison).
    let ratio: Vec<f64> = r
        .iter()
        .filter_map(|r| {
            let s: CompressSummary = summary(r, "snet3")?;
            Some(s.teacher_params as f64 / s.params as f64)
        })
        .collect();
    let mut c = Claim::new(
        "SNet3 has >= 50x fewer parameters than TNet",
        "compression",
        "TNet params / SNet3 params >= 50",
        "19M vs 0.27M (70x)",
        None,
    );
    if let Some(&q) = ratio.first() {
        use crate::models::attr_net::param_count;
        use crate::spec::Net;
        let arch = param_count(Net::Tnet, 40) as f64 / param_count(Net::Snet3, 40) as f64;
        c.seeds = ratio.len();
        c.ours = format!(
            "{q:.1}x in the nets that ran ({arch:.0}x for Table 3's layers at full width, 40 attributes)"
        );
        c.verdict = if q >= 50.0 {
            Verdict::Supported
        } else {
            Verdict::Contradicted
        };
    }
    out.push(c);

    // Table 5 at 64 px (paw.toml) and at 128 px on generator 2 (paw128.toml).
    for (spec, claim) in [
        ("paw", "PaW > max(Part-only, Whole-only)"),
        ("paw128", "PaW > max(Part-only, Whole-only), at 128 px"),
    ] {
        let r = latest_by_seed(runs, spec);
        if spec == "paw128" && r.is_empty() {
            continue;
        }
        let (paw, best) = pairs(
            &r,
            |r| acc(r, "eval-paw"),
            |r| Some(acc(r, "eval-part")?.max(acc(r, "eval-whole")?)),
        );
        let (part, whole) = pairs(&r, |r| acc(r, "eval-part"), |r| acc(r, "eval-whole"));
        out.push(
            Claim::new(
                claim,
                spec,
                "PaW − max(Part-only, Whole-only)",
                "91.23 vs 90.46 / 90.60",
                Some(91.23 - 90.60),
            )
            .judge(
                format!(
                    "PaW {} vs Part-only {}, Whole-only {}",
                    pm(&paw),
                    pm(&part),
                    pm(&whole)
                ),
                &diff(&paw, &best),
                0.0,
                true,
            ),
        );
    }
    // Controls (paw_controls.toml at 64 px, paw128_controls.toml at 128 px),
    // where they ran.
    for spec in ["paw_controls", "paw128_controls"] {
        let rc = latest_by_seed(runs, spec);
        for (stage, name) in [
            ("eval-fixed", "PaW on fixed mean-position patches"),
            ("eval-oracle", "PaW on ground-truth-region patches"),
            (
                "eval-whole-longer",
                "Whole-only (SNet3) given PaW's extra epochs",
            ),
            (
                "eval-ensemble",
                "an ensemble of two SNet3s (fewer extra epochs than PaW's)",
            ),
        ] {
            if rc.iter().any(|r| acc(r, stage).is_some()) {
                out.push(beats(
                    &format!("PaW beats {name} (control)"),
                    spec,
                    &rc,
                    ("eval-paw", "PaW"),
                    (stage, name),
                    "not in the paper",
                    f64::NAN,
                ));
            }
        }
    }

    let r = latest_by_seed(runs, "block_baseline");
    out.push(beats(
        "FRL patches > 4x4 blocks",
        "block_baseline",
        &r,
        ("eval-paw", "FRL patches"),
        ("eval-blocks", "blocks"),
        "FRL patches beat blocks",
        f64::NAN,
    ));

    let r = latest_by_seed(runs, "paw");
    let (local, global) = pairs(
        &r,
        |r| summary::<PawSummary>(r, "paw")?.rsl?.local_part_minus_whole,
        |r| {
            summary::<PawSummary>(r, "paw")?
                .rsl?
                .global_part_minus_whole
        },
    );
    let rsl = |v: &[f64], above: bool, part: &str| {
        Claim::new("", "paw", part, "Figure 5", None).judge(String::new(), v, 0.0, above)
    };
    let (l, g) = (
        rsl(&local, true, "local: part − whole weight > 0"),
        rsl(&global, false, "global: part − whole weight < 0"),
    );
    let mut c = Claim::new(
        "RSL favours parts for local, the whole for global attributes",
        "paw",
        "own-part − whole RSL weight: local > 0 and global < 0",
        "Figure 5",
        None,
    );
    if !local.is_empty() {
        c.seeds = local.len();
        let ci = |c: &Claim| {
            c.interval.map_or(String::new(), |i| {
                format!(" [{:+.2}, {:+.2}]", i.low, i.high)
            })
        };
        c.ours = format!(
            "local {}{}, global {}{}",
            pm(&local),
            ci(&l),
            pm(&global),
            ci(&g)
        );
        c.verdict = l.verdict.and(g.verdict);
    }
    out.push(c);

    // Table 2 (birds): MNL helps on full images; CAM-box crops help both.
    let r = latest_by_seed(runs, "cub_mnl");
    out.push(beats(
        "Birds: MNL raises the localisation branch's top-1",
        "cub_mnl",
        &r,
        ("eval-loc", "with MNL"),
        ("eval-plain", "without"),
        "71.66 vs 67.40",
        71.66 - 67.40,
    ));
    out.push(beats(
        "Birds: training and testing on CAM-box crops raises top-1 (MNL)",
        "cub_mnl",
        &r,
        ("eval-crop-loc", "CAM-box crop"),
        ("eval-loc", "full image"),
        "76.03 vs 71.66",
        76.03 - 71.66,
    ));
    out.push(beats(
        "Birds: CAM-box crops beat the same centred box in every image (control)",
        "cub_mnl",
        &r,
        ("eval-crop-loc", "CAM-box crop"),
        ("eval-centre-loc", "centre box"),
        "not in the paper",
        f64::NAN,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, seed: u64, overrides: &[&str], stages: &[(&str, f64)]) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "id": format!("{name}-{seed}"), "name": name, "title": name, "spec_path": "x.toml",
            "overrides": overrides, "started": "", "finished": null, "device": "cpu",
            "git_commit": null, "git_dirty": null, "status": "ok", "spec": { "seed": seed },
            "stages": stages.iter().map(|(id, a)| serde_json::json!({
                "id": id, "kind": "evaluate", "status": "ran", "key": null, "key_inputs": null,
                "digest": null, "seconds": 0.0, "summary": { "mean_accuracy": a, "split": "test", "head": "loc", "images": 100, "metric": "mean" },
                "error": null, "log": ""
            })).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn mnl_claim(runs: &[RunRecord]) -> Claim {
        check(runs)
            .into_iter()
            .find(|c| c.claim.starts_with("MNL raises"))
            .unwrap()
    }

    #[test]
    fn a_consistent_gain_over_seeds_is_supported() {
        let runs: Vec<_> = (1..=3)
            .map(|s| {
                run(
                    "ablation_mnl",
                    s,
                    &[],
                    &[
                        ("eval-loc", 0.80 + 0.01 * s as f64),
                        ("eval-plain", 0.70 + 0.01 * s as f64 + 0.001 * s as f64),
                    ],
                )
            })
            .collect();
        let c = mnl_claim(&runs);
        assert_eq!(c.seeds, 3);
        assert_eq!(c.verdict, Verdict::Supported, "{c:?}");
        let i = c.interval.unwrap();
        assert!(i.low > 0.0 && (i.mean - 9.8).abs() < 1e-9);
    }

    #[test]
    fn noisy_differences_are_inconclusive_not_no() {
        let d = [0.02, -0.015, 0.01];
        let runs: Vec<_> = (0..3)
            .map(|s| {
                run(
                    "ablation_mnl",
                    s as u64,
                    &[],
                    &[("eval-loc", 0.8 + d[s]), ("eval-plain", 0.8)],
                )
            })
            .collect();
        assert_eq!(mnl_claim(&runs).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_consistent_loss_is_contradicted() {
        let runs: Vec<_> = (0..3)
            .map(|s| {
                run(
                    "ablation_mnl",
                    s,
                    &[],
                    &[("eval-loc", 0.7 + 0.001 * s as f64), ("eval-plain", 0.8)],
                )
            })
            .collect();
        assert_eq!(mnl_claim(&runs).verdict, Verdict::Contradicted);
    }

    #[test]
    fn one_seed_is_not_applicable() {
        let c = mnl_claim(&[run(
            "ablation_mnl",
            1,
            &[],
            &[("eval-loc", 0.9), ("eval-plain", 0.8)],
        )]);
        assert_eq!(c.verdict, Verdict::NotApplicable);
        assert!(!c.ours.contains('±'), "{}", c.ours);
    }

    #[test]
    fn overridden_runs_are_not_evidence() {
        let runs: Vec<_> = (1..=3)
            .map(|s| {
                run(
                    "ablation_mnl",
                    s,
                    &["train.epochs=1"],
                    &[("eval-loc", 0.9), ("eval-plain", 0.5)],
                )
            })
            .collect();
        assert_eq!(mnl_claim(&runs).verdict, Verdict::Missing);
        let seeded = run(
            "ablation_mnl",
            1,
            &["experiment.seed=1"],
            &[("eval-loc", 0.9), ("eval-plain", 0.5)],
        );
        assert_eq!(mnl_claim(&[seeded]).seeds, 1);
    }

    #[test]
    fn partial_runs_are_not_evidence() {
        let mut partial = run(
            "ablation_mnl",
            1,
            &[],
            &[("eval-loc", 0.9), ("eval-plain", 0.5)],
        );
        assert_eq!(mnl_claim(std::slice::from_ref(&partial)).seeds, 1);
        partial.spec["only"] = serde_json::json!(["eval-loc"]);
        assert_eq!(mnl_claim(&[partial]).verdict, Verdict::Missing);
    }
}
