//! Claims: each spec's `[[claim]]`s (the paper's among them), checked on the
//! latest successful run of every seed of their specs, run as written
//! (overrides other than the seed make a run a different experiment and are not evidence).
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
use crate::spec::claim::{ClaimSpec, ClaimTest};

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
    /// What the interval is judged against (the claim's margin), where it
    /// has one.
    pub threshold: Option<f64>,
    /// The tested difference on each seed, in seed order (difference
    /// claims), so a reader sees whether an interval is wide from one
    /// outlying seed or from spread.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_seed: Vec<SeedDifference>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedDifference {
    pub seed: u64,
    pub difference: f64,
}

impl Claim {
    /// The tested quantity, its interval and the seeds the paper's difference
    /// needs, one per line.
    pub fn interval_cell(&self) -> String {
        let mut s = self.tested.clone();
        if let Some(i) = self.interval {
            s += &format!("\n{i}");
        }
        if self.per_seed.len() > 1 {
            let seeds: Vec<String> = self.per_seed.iter().map(|d| d.seed.to_string()).collect();
            let values: Vec<String> = self
                .per_seed
                .iter()
                .map(|d| format!("{:+.2}", d.difference))
                .collect();
            s += &format!("\nseeds {}: {}", seeds.join(", "), values.join(", "));
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
            threshold: None,
            per_seed: Vec::new(),
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
        self.threshold = Some(threshold);
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
    // A spec may itself select its stages (`[experiment] only`); only a
    // `--stage` selection on top of it makes a run partial.
    r.spec.get("only") == r.spec.get("declared_only")
        && r.overrides
            .iter()
            .chain(&r.point)
            .all(|o| o.starts_with("experiment.seed="))
}

/// The paper's specs, in the order `exp claims` lists their claims.
pub const SPECS: [&str; 9] = [
    "ablation_mnl",
    "compression",
    "paw",
    "paw128",
    "paw_controls",
    "paw128_controls",
    "block_baseline",
    "block_baseline128",
    "cub_mnl",
];

/// Splits the claims' candidate runs into those whose recorded spec agrees
/// with their spec file as it now reads (with the run's seed) and those
/// whose does not, with why: after an edit to a paper spec, its older runs
/// are another experiment. Only the data and the stages both have are
/// compared, so adding a stage (a new control) keeps older runs. A kept
/// run's `claims` are its file's as it now reads. Runs of specs that state
/// no claims pass through.
pub fn as_the_files_read(runs: Vec<RunRecord>) -> (Vec<RunRecord>, Vec<(String, String)>) {
    let mut current: BTreeMap<(String, u64), Result<serde_json::Value, String>> = BTreeMap::new();
    let (mut kept, mut skipped) = (Vec::new(), Vec::new());
    for mut r in runs {
        if r.status != "ok" || !as_written(&r) {
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
        let paper = SPECS.contains(&r.name.as_str());
        match now {
            // Another program's spec that no longer loads claims nothing.
            Err(_) if !paper => kept.push(r),
            Err(e) => skipped.push((
                r.id.clone(),
                format!("`{}` no longer loads: {e}", r.spec_path),
            )),
            // A spec that states no claims: its runs are not checked.
            Ok(now) if !paper && now.get("claims").is_none() => kept.push(r),
            Ok(now) => match spec_difference(&r.spec, now) {
                Some(why) => skipped.push((
                    r.id.clone(),
                    format!("`{}` now differs: {why}", r.spec_path),
                )),
                None => {
                    // The claims as the file states them now (added after
                    // the run, too).
                    r.spec["claims"] = now.get("claims").cloned().unwrap_or_default();
                    kept.push(r)
                }
            },
        }
    }
    (kept, skipped)
}

/// Where a recorded spec and the current one disagree: the data, or a
/// stage both have.
pub fn spec_difference(then: &serde_json::Value, now: &serde_json::Value) -> Option<String> {
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
        by_seed.entry(seed_of(r)).or_insert(r); // runs are newest first
    }
    by_seed.into_values().collect()
}

fn seed_of(r: &RunRecord) -> u64 {
    r.spec["seed"].as_u64().unwrap_or(0)
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

/// Specs whose claims are listed even before they ran (read from
/// `experiments/<name>.toml` where it is): the paper's tables.
const PAPER: [&str; 5] = [
    "ablation_mnl",
    "compression",
    "paw",
    "block_baseline",
    "cub_mnl",
];

/// Every spec's `[[claim]]`s: for a spec with a run as written (as
/// [`as_the_files_read`] left it), its file's as it now reads, else that
/// run's; else from the spec file of its runs; else for the paper's specs
/// without runs from `experiments/`.
fn declared(runs: &[RunRecord]) -> Vec<(String, Vec<ClaimSpec>)> {
    let mut by_name: BTreeMap<String, Vec<ClaimSpec>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.status == "ok" && as_written(r)) {
        if by_name.contains_key(&r.name) {
            continue; // runs are newest first
        }
        // The claims are the spec file's as it now reads (a claim added
        // since judges the runs already made), else the run's own.
        let claims: Vec<ClaimSpec> = crate::spec::load(std::path::Path::new(&r.spec_path), &[])
            .map(|spec| spec.claims)
            .ok()
            .or_else(|| {
                r.spec
                    .get("claims")
                    .and_then(|c| serde_json::from_value(c.clone()).ok())
            })
            .unwrap_or_default();
        by_name.insert(r.name.clone(), claims);
    }
    // A spec without a run as written: its file states what is missing.
    let mut loaded: Vec<String> = Vec::new();
    for r in runs {
        if by_name.contains_key(&r.name) || loaded.contains(&r.name) {
            continue;
        }
        loaded.push(r.name.clone());
        if let Ok(spec) = crate::spec::load(std::path::Path::new(&r.spec_path), &[]) {
            by_name.insert(r.name.clone(), spec.claims);
        }
    }
    for name in PAPER {
        if !by_name.contains_key(name) {
            let path = std::path::Path::new("experiments").join(format!("{name}.toml"));
            if let Ok(spec) = crate::spec::load(&path, &[]) {
                by_name.insert(name.to_string(), spec.claims);
            }
        }
    }
    // The paper's specs in their order, then other specs by name.
    let rank = |n: &str| SPECS.iter().position(|o| *o == n).unwrap_or(SPECS.len());
    let mut out: Vec<(String, Vec<ClaimSpec>)> =
        by_name.into_iter().filter(|(_, c)| !c.is_empty()).collect();
    out.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
    out
}

/// A stage's number in a run: an `evaluate` stage's mean accuracy (or its
/// `metric`) and a `localize` stage's rates (`pointing_game`, `maxboxacc`)
/// in percentage points, a command's `metric` as written.
fn value(r: &RunRecord, stage: &str, metric: Option<&str>) -> Option<f64> {
    let s = r.stages.iter().find(|s| s.id == stage)?;
    match metric {
        None => acc(r, stage),
        Some(m) => {
            let v = s.summary.get(m)?.as_f64()?;
            let fraction = matches!(s.kind.as_str(), "evaluate" | "localize");
            Some(if fraction { 100.0 * v } else { v })
        }
    }
}

/// Judge a `[[claim]]` on each seed's run.
fn judge(spec: &str, c: &ClaimSpec, runs: &[&RunRecord]) -> Claim {
    match &c.test {
        ClaimTest::Difference {
            better,
            than,
            metric,
            margin,
        } => difference(spec, c, runs, better, than, metric.as_deref(), *margin),
        ClaimTest::FewerParameters {
            fewer_parameters,
            at_least,
        } => parameter_ratio(spec, c, runs, fewer_parameters, *at_least),
        ClaimTest::RslWeights { rsl_weights: stage } => rsl_weights(spec, c, runs, stage),
    }
}

/// `better − max(than) > margin`.
fn difference(
    spec: &str,
    c: &ClaimSpec,
    runs: &[&RunRecord],
    better_stage: &str,
    than_stages: &[String],
    metric: Option<&str>,
    margin: f64,
) -> Claim {
    let (seeds, rows): (Vec<u64>, Vec<(f64, Vec<f64>)>) = runs
        .iter()
        .filter_map(|r| {
            let than: Option<Vec<f64>> = than_stages.iter().map(|t| value(r, t, metric)).collect();
            Some((seed_of(r), (value(r, better_stage, metric)?, than?)))
        })
        .unzip();
    let better: Vec<f64> = rows.iter().map(|(b, _)| *b).collect();
    let best: Vec<f64> = rows
        .iter()
        .map(|(_, t)| t.iter().copied().fold(f64::MIN, f64::max))
        .collect();
    let names: Vec<&str> = than_stages.iter().map(|t| c.label(t)).collect();
    let than = match names.as_slice() {
        [one] => one.to_string(),
        many => format!("max({})", many.join(", ")),
    };
    let mut tested = format!("{} − {than}", c.label(better_stage));
    if margin != 0.0 {
        tested += &format!(" > {margin}");
    }
    let each: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Vec<f64> = rows.iter().map(|(_, t)| t[i]).collect();
            format!("{n} {}", pm(&v))
        })
        .collect();
    let ours = format!(
        "{} {} vs {}",
        c.label(better_stage),
        pm(&better),
        each.join(", ")
    );
    let differences = diff(&better, &best);
    let mut claim = Claim::new(
        &c.name,
        spec,
        &tested,
        c.paper.as_deref().unwrap_or("not in the paper"),
        c.paper_difference,
    )
    .judge(ours, &differences, margin, true);
    claim.per_seed = (seeds.iter().zip(&differences))
        .map(|(&seed, &difference)| SeedDifference { seed, difference })
        .collect();
    claim
}

/// Every spec's `[[claim]]`s on its latest runs (one per seed).
pub fn check(runs: &[RunRecord]) -> Vec<Claim> {
    let mut out = Vec::new();
    for (spec, claims) in declared(runs) {
        let r = latest_by_seed(runs, &spec);
        for c in &claims {
            out.push(judge(&spec, c, &r));
        }
    }
    out
}

/// A compression's parameter ratio, teacher over student, of the nets that
/// ran (no seed noise: a plain comparison).
fn parameter_ratio(
    spec: &str,
    c: &ClaimSpec,
    r: &[&RunRecord],
    stage: &str,
    at_least: f64,
) -> Claim {
    let ratio: Vec<f64> = r
        .iter()
        .filter_map(|r| {
            let s: CompressSummary = summary(r, stage)?;
            Some(s.teacher_params as f64 / s.params as f64)
        })
        .collect();
    let student = c.label(stage);
    let mut c = Claim::new(
        &c.name,
        spec,
        &format!("teacher params / {student} params >= {at_least}"),
        c.paper.as_deref().unwrap_or("not in the paper"),
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
        c.verdict = if q >= at_least {
            Verdict::Supported
        } else {
            Verdict::Contradicted
        };
    }
    c
}

/// The region switch layer favours parts for local attributes and the
/// whole image for global ones (Figure 5).
fn rsl_weights(spec: &str, c: &ClaimSpec, r: &[&RunRecord], stage: &str) -> Claim {
    let (local, global) = pairs(
        r,
        |r| summary::<PawSummary>(r, stage)?.rsl?.local_part_minus_whole,
        |r| {
            summary::<PawSummary>(r, stage)?
                .rsl?
                .global_part_minus_whole
        },
    );
    let rsl = |v: &[f64], above: bool, part: &str| {
        Claim::new("", spec, part, "", None).judge(String::new(), v, 0.0, above)
    };
    let (l, g) = (
        rsl(&local, true, "local: part − whole weight > 0"),
        rsl(&global, false, "global: part − whole weight < 0"),
    );
    let mut c = Claim::new(
        &c.name,
        spec,
        "own-part − whole RSL weight: local > 0 and global < 0",
        c.paper.as_deref().unwrap_or("not in the paper"),
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
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, seed: u64, overrides: &[&str], stages: &[(&str, f64)]) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "id": format!("{name}-{seed}"), "name": name, "title": name, "spec_path": "x.toml",
            "overrides": overrides, "started": "", "finished": null, "device": "cpu",
            "git_commit": null, "git_dirty": null, "status": "ok",
            "spec": { "seed": seed, "claims": [{
                "name": "MNL raises the localisation branch's accuracy",
                "better": "eval-loc", "than": ["eval-plain"], "margin": 0.0,
            }] },
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
    fn each_seeds_difference_is_listed_in_seed_order() {
        // Runs newest first, as the run index lists them: seed 3 first.
        let runs: Vec<_> = [3u64, 1, 2]
            .iter()
            .map(|&s| {
                let plain = 0.70 + 0.01 * s as f64;
                run(
                    "ablation_mnl",
                    s,
                    &[],
                    &[("eval-loc", 0.80), ("eval-plain", plain)],
                )
            })
            .collect();
        let c = mnl_claim(&runs);
        let seeds: Vec<u64> = c.per_seed.iter().map(|d| d.seed).collect();
        assert_eq!(seeds, [1, 2, 3]);
        for d in &c.per_seed {
            assert!(
                (d.difference - (10.0 - d.seed as f64)).abs() < 1e-9,
                "{d:?}"
            );
        }
        assert!(
            c.interval_cell()
                .contains("seeds 1, 2, 3: +9.00, +8.00, +7.00"),
            "{}",
            c.interval_cell()
        );
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

    #[test]
    fn a_spec_that_selects_its_own_stages_is_evidence_unless_a_run_narrows_it() {
        let mut own = run(
            "ablation_mnl",
            1,
            &["experiment.seed=1"],
            &[("eval-loc", 0.9), ("eval-plain", 0.5)],
        );
        own.spec["only"] = serde_json::json!(["eval-loc", "eval-plain"]);
        own.spec["declared_only"] = own.spec["only"].clone();
        assert_eq!(mnl_claim(std::slice::from_ref(&own)).seeds, 1);
        own.spec["only"] = serde_json::json!(["eval-loc"]);
        assert_eq!(mnl_claim(&[own]).verdict, Verdict::Missing);
    }

    /// `base − new > margin` judged on three seeds of stages of `kind`
    /// whose summaries hold `metric`: base `1.0 + 0.01 × seed`, new 0.5.
    fn metric_claim(kind: &str, metric: &str, margin: f64) -> Claim {
        let runs: Vec<_> = (1..=3)
            .map(|s| {
                let mut r = run("mine", s, &[], &[]);
                r.spec["claims"] = serde_json::json!([{
                    "name": "base beats new", "better": "base", "than": ["new"],
                    "metric": metric, "margin": margin,
                }]);
                for (id, v) in [("base", 1.0 + 0.01 * s as f64), ("new", 0.5)] {
                    let mut st = run("x", 0, &[], &[("x", 0.0)]).stages.remove(0);
                    st.id = id.into();
                    st.kind = kind.into();
                    st.summary = serde_json::json!({ metric: v });
                    r.stages.push(st);
                }
                r
            })
            .collect();
        check(&runs)
            .into_iter()
            .find(|c| c.spec == "mine")
            .expect("the spec's claim is judged")
    }

    #[test]
    fn any_spec_can_state_a_claim_on_a_command_metric() {
        let c = metric_claim("command", "loss", 0.1);
        assert_eq!(c.tested, "base − new > 0.1");
        assert_eq!(c.verdict, Verdict::Supported, "{c:?}");
        // A command's metric is compared as written, not in percent.
        assert!((c.interval.unwrap().mean - 0.52).abs() < 1e-9);
    }

    #[test]
    fn a_localize_stages_pointing_game_is_compared_in_percentage_points() {
        let c = metric_claim("localize", "pointing_game", 0.0);
        assert_eq!(c.verdict, Verdict::Supported, "{c:?}");
        assert!((c.interval.unwrap().mean - 52.0).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn a_parameter_ratio_claim_reads_the_nets_that_ran() {
        let with_student = |params: u64| {
            let mut r = run("small", 1, &[], &[("x", 0.5)]);
            r.spec["claims"] = serde_json::json!([{
                "name": "student 50x smaller", "fewer-parameters": "student", "at-least": 50.0,
            }]);
            let st = &mut r.stages[0];
            st.id = "student".into();
            st.kind = "compress".into();
            st.summary = serde_json::json!({
                "net": "snet3", "params": params, "teacher_params": 6_000_000,
                "hint_loss_first": null, "hint_loss_last": null, "val_accuracy": null, "epoch": null,
            });
            check(&[r]).into_iter().find(|c| c.spec == "small").unwrap()
        };
        let c = with_student(100_000);
        assert_eq!(c.verdict, Verdict::Supported, "{c:?}");
        assert!(c.ours.starts_with("60.0x"), "{}", c.ours);
        assert_eq!(with_student(200_000).verdict, Verdict::Contradicted);
    }
}
