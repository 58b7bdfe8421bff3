//! Statistics behind the claims: paired per-seed differences with a
//! Student-t confidence interval, and a three-way verdict.
//!
//! The rule, fixed before any claim was looked at: a claim "A > B" is
//! *supported* when the 95% interval of the mean paired difference A − B lies
//! above 0, *contradicted* when it lies below 0, and *inconclusive* when it
//! contains 0. Fewer than two seeds give no interval: *n/a*.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Confidence level of every interval in reports and `exp claims`.
pub const LEVEL: f64 = 0.95;

/// Mean and sample standard deviation (NaN for empty input; std 0 for one value).
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

/// The two-sided t quantile for `LEVEL` with `df` degrees of freedom.
fn t_quantile(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .expect("df > 0")
        .inverse_cdf(0.5 + LEVEL / 2.0)
}

/// A mean with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// Standard deviation of the values the mean is over.
    pub std: f64,
    pub n: usize,
}

impl Interval {
    /// The t interval of the mean of `v`; `None` below two values.
    pub fn of(v: &[f64]) -> Option<Interval> {
        if v.len() < 2 || v.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let (mean, std) = mean_std(v);
        let half = t_quantile(v.len() as f64 - 1.0) * std / (v.len() as f64).sqrt();
        Some(Interval {
            mean,
            low: mean - half,
            high: mean + half,
            std,
            n: v.len(),
        })
    }

    /// The interval of the paired differences `a[i] − b[i]`.
    pub fn paired(a: &[f64], b: &[f64]) -> Option<Interval> {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        Self::of(&d)
    }

    /// Where the interval lies relative to `threshold`, for a claim that the
    /// true value is above it.
    pub fn above(&self, threshold: f64) -> Verdict {
        if self.low > threshold {
            Verdict::Supported
        } else if self.high < threshold {
            Verdict::Contradicted
        } else {
            Verdict::Inconclusive
        }
    }

    /// The same for a claim that the true value is below `threshold`.
    pub fn below(&self, threshold: f64) -> Verdict {
        match self.above(threshold) {
            Verdict::Supported => Verdict::Contradicted,
            Verdict::Contradicted => Verdict::Supported,
            v => v,
        }
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:+.2} [{:+.2}, {:+.2}]", self.mean, self.low, self.high)
    }
}

/// What the evidence says about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Supported,
    Contradicted,
    Inconclusive,
    /// Too few seeds for an interval.
    NotApplicable,
    /// No successful runs of the claim's spec.
    Missing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotApplicable => "n/a",
            Verdict::Missing => "-",
        }
    }

    /// Both parts of a two-part claim: any contradiction wins, then any doubt.
    pub fn and(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Missing, _) | (_, Missing) => Missing,
            (Contradicted, _) | (_, Contradicted) => Contradicted,
            (NotApplicable, _) | (_, NotApplicable) => NotApplicable,
            (Inconclusive, _) | (_, Inconclusive) => Inconclusive,
            (Supported, Supported) => Supported,
        }
    }
}

/// Seeds needed for a 95% interval of half-width `effect`, given a pilot's
/// standard deviation of the paired differences (the smallest n with
/// t(n−1) · std / √n < effect); `None` beyond 1,000 seeds.
pub fn seeds_to_resolve(std: f64, effect: f64) -> Option<usize> {
    if !(std.is_finite() && effect > 0.0) {
        return None;
    }
    (2..=1000).find(|&n| t_quantile(n as f64 - 1.0) * std / (n as f64).sqrt() < effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95%: 12.706 (1 df), 4.303 (2), 2.262 (9), → 1.960.
        for (df, want) in [(1.0, 12.706), (2.0, 4.303), (9.0, 2.262), (1e6, 1.960)] {
            assert!((t_quantile(df) - want).abs() < 1e-3, "df {df}");
        }
    }

    #[test]
    fn paired_interval_uses_the_differences() {
        // Differences 1, 2, 3: mean 2, std 1, half-width 4.303 / √3.
        let i = Interval::paired(&[11.0, 22.0, 33.0], &[10.0, 20.0, 30.0]).unwrap();
        let half = 4.303 / 3f64.sqrt();
        assert!((i.mean - 2.0).abs() < 1e-12);
        assert!((i.low - (2.0 - half)).abs() < 1e-3 && (i.high - (2.0 + half)).abs() < 1e-3);
        assert_eq!(i.above(0.0), Verdict::Inconclusive);
    }

    #[test]
    fn verdict_is_three_way() {
        let tight = |m: f64| Interval::of(&[m - 0.1, m, m + 0.1]).unwrap();
        assert_eq!(tight(1.0).above(0.0), Verdict::Supported);
        assert_eq!(tight(-1.0).above(0.0), Verdict::Contradicted);
        assert_eq!(tight(0.0).above(0.0), Verdict::Inconclusive);
        assert_eq!(tight(0.5).below(1.0), Verdict::Supported);
        assert_eq!(tight(1.5).below(1.0), Verdict::Contradicted);
    }

    #[test]
    fn one_seed_gives_no_interval() {
        assert!(Interval::of(&[1.0]).is_none());
        assert!(Interval::paired(&[1.0], &[0.5]).is_none());
    }

    #[test]
    fn two_part_verdicts_combine() {
        use Verdict::*;
        assert_eq!(Supported.and(Supported), Supported);
        assert_eq!(Supported.and(Inconclusive), Inconclusive);
        assert_eq!(Inconclusive.and(Contradicted), Contradicted);
        assert_eq!(Supported.and(NotApplicable), NotApplicable);
    }

    #[test]
    fn under_no_effect_the_rule_rarely_says_supported() {
        // Paired differences of pure noise, 3 seeds: a 95% interval excludes 0
        // on the positive side ~2.5% of the time (the old "mean difference >
        // pooled std" rule said "holds" ~14% of the time).
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let trials = 4000;
        let supported = (0..trials)
            .filter(|_| {
                let d: Vec<f64> = (0..3)
                    .map(|_| {
                        // Box–Muller normal.
                        let (u, v): (f64, f64) = (rng.random(), rng.random());
                        (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                    })
                    .collect();
                Interval::of(&d).unwrap().above(0.0) == Verdict::Supported
            })
            .count();
        let rate = supported as f64 / trials as f64;
        assert!((0.01..0.045).contains(&rate), "false support rate {rate}");
    }

    #[test]
    fn seeds_to_resolve_grows_with_noise() {
        // std 1, effect 1: t(n−1)/√n < 1 first at n = 7 (2.447/√7 = 0.925; n=6: 1.05).
        assert_eq!(seeds_to_resolve(1.0, 1.0), Some(7));
        assert!(seeds_to_resolve(2.0, 1.0).unwrap() > 7);
        assert_eq!(seeds_to_resolve(1.0, 0.0), None);
    }
}
