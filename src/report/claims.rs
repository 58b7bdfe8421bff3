//! The paper's claims, checked on the latest successful run of every seed of
//! the paper's specs. A claim comparing two numbers holds when the mean
//! difference exceeds the pooled standard deviation over seeds.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::runs::RunRecord;

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub claim: String,
    pub spec: String,
    pub seeds: usize,
    /// What was compared, e.g. `PaW 88.1 ± 0.3 vs best single 87.2 ± 0.4`.
    pub ours: String,
    pub paper: String,
    /// `None` when the runs are missing.
    pub holds: Option<bool>,
}

/// Latest ok run per seed of a spec name.
fn latest_by_seed<'a>(runs: &'a [RunRecord], name: &str) -> Vec<&'a RunRecord> {
    let mut by_seed: BTreeMap<u64, &RunRecord> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.name == name && r.status == "ok") {
        let seed = r.spec["seed"].as_u64().unwrap_or(0);
        by_seed.entry(seed).or_insert(r); // runs are newest first
    }
    by_seed.into_values().collect()
}

fn stage_value(r: &RunRecord, stage: &str, path: &[&str]) -> Option<f64> {
    let s = r.stages.iter().find(|s| s.id == stage)?;
    let mut v = &s.summary;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
}

fn acc(r: &RunRecord, stage: &str) -> Option<f64> {
    stage_value(r, stage, &["mean_accuracy"]).map(|a| 100.0 * a)
}

fn pm(v: &[f64]) -> String {
    let (m, s) = mean_std(v);
    format!("{m:.2} ± {s:.2}")
}

/// `a` beats `b` when mean(a − b) > pooled std of a and b.
fn beats(a: &[f64], b: &[f64]) -> bool {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (_, sa) = mean_std(a);
    let (_, sb) = mean_std(b);
    let pooled = ((sa * sa + sb * sb) / 2.0).sqrt();
    mean_std(&diff).0 > pooled
}

/// Pairs of per-seed values from two stages of each run.
fn pairs(
    runs: &[&RunRecord],
    a: impl Fn(&RunRecord) -> Option<f64>,
    b: impl Fn(&RunRecord) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    runs.iter().filter_map(|r| Some((a(r)?, b(r)?))).unzip()
}

pub fn check(runs: &[RunRecord]) -> Vec<Claim> {
    let mut out = Vec::new();
    let missing = |claim: &str, spec: &str, paper: &str| Claim {
        claim: claim.into(),
        spec: spec.into(),
        seeds: 0,
        ours: "no successful runs".into(),
        paper: paper.into(),
        holds: None,
    };

    let r = latest_by_seed(runs, "ablation_mnl");
    let (with, without) = pairs(&r, |r| acc(r, "eval-loc"), |r| acc(r, "eval-plain"));
    out.push(if with.is_empty() {
        missing(
            "MNL raises the localisation branch's accuracy",
            "ablation_mnl",
            "91.07 vs 91.01",
        )
    } else {
        Claim {
            claim: "MNL raises the localisation branch's accuracy".into(),
            spec: "ablation_mnl".into(),
            seeds: with.len(),
            ours: format!("{} vs {}", pm(&with), pm(&without)),
            paper: "91.07 vs 91.01".into(),
            holds: Some(beats(&with, &without)),
        }
    });

    let r = latest_by_seed(runs, "compression");
    let (tnet, snet3) = pairs(&r, |r| acc(r, "eval-tnet"), |r| acc(r, "eval-snet3"));
    let ratio: Vec<f64> = r
        .iter()
        .filter_map(|r| {
            Some(
                stage_value(r, "snet3", &["teacher_params"])?
                    / stage_value(r, "snet3", &["params"])?,
            )
        })
        .collect();
    out.push(if tnet.is_empty() {
        missing("SNet3 within 1 point of TNet with >= 50x fewer parameters", "compression", "90.60 vs 91.07, 0.27M vs 19M")
    } else {
        let gap = mean_std(&tnet).0 - mean_std(&snet3).0;
        let ratio = mean_std(&ratio).0;
        // Our CPU runs shrink TNet's width, so the parameter ratio is judged on
        // Table 3's architectures (40 attributes, full width), which we count.
        use crate::models::attr_net::param_count;
        let arch = param_count(crate::spec::Net::Tnet, 40) as f64 / param_count(crate::spec::Net::Snet3, 40) as f64;
        Claim {
            claim: "SNet3 within 1 point of TNet with >= 50x fewer parameters".into(),
            spec: "compression".into(),
            seeds: tnet.len(),
            ours: format!(
                "TNet {} vs SNet3 {} (gap {gap:.2}); {arch:.0}x fewer parameters in Table 3's layers ({ratio:.1}x in our width-reduced runs)",
                pm(&tnet),
                pm(&snet3)
            ),
            paper: "90.60 vs 91.07, 0.27M vs 19M".into(),
            holds: Some(gap < 1.0 && arch >= 50.0),
        }
    });

    let r = latest_by_seed(runs, "paw");
    let (paw, best) = pairs(
        &r,
        |r| acc(r, "eval-paw"),
        |r| Some(acc(r, "eval-part")?.max(acc(r, "eval-whole")?)),
    );
    out.push(if paw.is_empty() {
        missing("PaW > max(Part-only, Whole-only)", "paw", "91.23 vs 90.60")
    } else {
        let (part, whole) = pairs(&r, |r| acc(r, "eval-part"), |r| acc(r, "eval-whole"));
        Claim {
            claim: "PaW > max(Part-only, Whole-only)".into(),
            spec: "paw".into(),
            seeds: paw.len(),
            ours: format!(
                "PaW {} vs Part-only {}, Whole-only {}",
                pm(&paw),
                pm(&part),
                pm(&whole)
            ),
            paper: "91.23 vs 90.46 / 90.60".into(),
            holds: Some(beats(&paw, &best)),
        }
    });

    let r = latest_by_seed(runs, "block_baseline");
    let (frl, blocks) = pairs(&r, |r| acc(r, "eval-paw"), |r| acc(r, "eval-blocks"));
    out.push(if frl.is_empty() {
        missing(
            "FRL patches > 4x4 blocks",
            "block_baseline",
            "PaW with FRL patches beats blocks",
        )
    } else {
        Claim {
            claim: "FRL patches > 4x4 blocks".into(),
            spec: "block_baseline".into(),
            seeds: frl.len(),
            ours: format!("{} vs {}", pm(&frl), pm(&blocks)),
            paper: "FRL patches beat blocks".into(),
            holds: Some(beats(&frl, &blocks)),
        }
    });

    let r = latest_by_seed(runs, "paw");
    let (local, global) = pairs(
        &r,
        |r| stage_value(r, "paw", &["rsl", "local_part_minus_whole"]),
        |r| stage_value(r, "paw", &["rsl", "global_part_minus_whole"]),
    );
    out.push(if local.is_empty() {
        missing(
            "RSL favours parts for local, the whole for global attributes",
            "paw",
            "Figure 5",
        )
    } else {
        let (l, g) = (mean_std(&local).0, mean_std(&global).0);
        Claim {
            claim: "RSL favours parts for local, the whole for global attributes".into(),
            spec: "paw".into(),
            seeds: local.len(),
            ours: format!(
                "own part − whole RSL weight: local {}, global {}",
                pm(&local),
                pm(&global)
            ),
            paper: "Figure 5".into(),
            holds: Some(l > 0.0 && g < 0.0),
        }
    });

    // Table 2 (birds): MNL helps on full images; CAM-box crops help both.
    let r = latest_by_seed(runs, "cub_mnl");
    let (with, without) = pairs(&r, |r| acc(r, "eval-loc"), |r| acc(r, "eval-plain"));
    out.push(if with.is_empty() {
        missing(
            "Birds: MNL raises the localisation branch's top-1",
            "cub_mnl",
            "71.66 vs 67.40",
        )
    } else {
        Claim {
            claim: "Birds: MNL raises the localisation branch's top-1".into(),
            spec: "cub_mnl".into(),
            seeds: with.len(),
            ours: format!("{} vs {}", pm(&with), pm(&without)),
            paper: "71.66 vs 67.40".into(),
            holds: Some(beats(&with, &without)),
        }
    });
    let (crop, full) = pairs(&r, |r| acc(r, "eval-crop-loc"), |r| acc(r, "eval-loc"));
    out.push(if crop.is_empty() {
        missing(
            "Birds: training and testing on CAM-box crops raises top-1 (MNL)",
            "cub_mnl",
            "76.03 vs 71.66",
        )
    } else {
        let (gt, _) = pairs(&r, |r| acc(r, "eval-gt-loc"), |r| acc(r, "eval-loc"));
        Claim {
            claim: "Birds: training and testing on CAM-box crops raises top-1 (MNL)".into(),
            spec: "cub_mnl".into(),
            seeds: crop.len(),
            ours: format!(
                "crop {} vs full {} (ground-truth box {})",
                pm(&crop),
                pm(&full),
                pm(&gt)
            ),
            paper: "76.03 vs 71.66".into(),
            holds: Some(beats(&crop, &full)),
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_aggregate_to_mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(beats(&[90.0, 91.0, 92.0], &[80.0, 81.0, 82.0]));
        assert!(!beats(&[90.0, 95.0, 85.0], &[89.0, 94.0, 86.0]));
    }
}
