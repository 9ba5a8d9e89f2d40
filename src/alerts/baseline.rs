//! The arithmetic of the baseline rules.
//!
//! An entity's normal is an **exponentially weighted mean and deviation**
//! ([`Ewma`]) of a windowed statistic, updated once per closed bucket with a
//! half-life in seconds: `α = 1 − 2^(−bucket / half_life)`, then
//! `δ = x − μ`, `μ ← μ + α·δ`, `σ² ← (1 − α)·(σ² + α·δ²)` (West's
//! incremental form). A statistic is judged against the baseline *before*
//! the baseline takes it in.
//!
//! The tests ([`Test`]):
//! - **volume spike**: `V ≥ μ + k·s` with `s = max(σ, √μ, 1)` (the Poisson
//!   floor: a count of mean μ naturally varies by √μ), and `V ≥ ratio·μ`, and
//!   `V ≥ min_volume`. This is the mean + k·σ test with a floor that keeps
//!   quiet entities (μ ≈ 0.3 posts a window) from alerting on three posts.
//! - **sentiment shift**: `|x − μ| ≥ k·max(σ, floor)` on the window's mean
//!   sentiment, with at least `min_volume` posts in the window.
//! - **toxicity surge**: `x − μ ≥ k·max(σ, floor)` and `x ≥ min_level`, with
//!   at least `min_volume` posts.
//!
//! For the means (sentiment, toxicity) the deviation used is also at least
//! the standard error of a mean of the window's `n` posts, `√(v/n)`, with `v`
//! the entity's per-post variance baseline: a window of 15 posts varies far
//! more than one of 500, whatever the baseline of past windows says.
//! Baselines take samples in winsorised at 3 deviations once warm
//! ([`Ewma::update_clipped`]).
//!
//! The distance past the threshold in deviations, over k, is the `excess`
//! that [`crate::alerts::model::severity`] turns into 1–10.

/// An exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ewma {
    /// The mean.
    pub mean: f64,
    /// The variance.
    pub var: f64,
    /// Samples taken in.
    pub n: u64,
}

impl Ewma {
    /// The weight of one sample for buckets of `bucket_s` and a half-life of
    /// `half_life_s` seconds.
    pub fn alpha(bucket_s: f64, half_life_s: f64) -> f64 {
        if half_life_s <= 0.0 || !half_life_s.is_finite() {
            return 1.0;
        }
        (1.0 - (-bucket_s / half_life_s).exp2()).clamp(0.0, 1.0)
    }

    /// Takes in one sample with weight `alpha`. The first sample sets the mean.
    pub fn update(&mut self, x: f64, alpha: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let d = x - self.mean;
            self.mean += alpha * d;
            self.var = (1.0 - alpha) * (self.var + alpha * d * d);
        }
        self.n += 1;
    }

    /// Takes in `x` winsorised to `mean ± clip·scale` once warm (`n ≥
    /// warm`), so that an episode the rules judged (or missed) does not
    /// inflate the deviation for hours: the robust form of the update.
    /// An outlier moves the mean by its winsorised value but leaves the
    /// variance alone: recurring episodes would otherwise widen it a little
    /// every time, until none stands out.
    pub fn update_clipped(&mut self, x: f64, alpha: f64, clip: f64, scale: f64, warm: u64) {
        if !x.is_finite() {
            return;
        }
        let (lo, hi) = (self.mean - clip * scale, self.mean + clip * scale);
        if self.n >= warm && scale > 0.0 && (x < lo || x > hi) {
            self.mean += alpha * (x.clamp(lo, hi) - self.mean);
            self.n += 1;
        } else {
            self.update(x, alpha);
        }
    }

    /// The standard deviation.
    pub fn dev(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

/// What a test found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Whether the value is past the threshold (and every guard holds).
    pub fires: bool,
    /// Whether the value is back well inside (below half the distance to the
    /// threshold): what resolves an alert.
    pub clear: bool,
    /// The threshold the value was judged against (on the side it moved to).
    pub threshold: f64,
    /// Distance past the threshold in units of `k` deviations (0 when not past).
    pub excess: f64,
}

/// The baseline tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Test {
    /// Count against mean + k·max(σ, √μ, 1), at least `ratio`·μ.
    Spike {
        /// Deviations.
        k: f64,
        /// Least multiple of the mean.
        ratio: f64,
    },
    /// Two-sided shift of a mean against mean ± k·max(σ, floor).
    Shift {
        /// Deviations.
        k: f64,
        /// Least deviation used.
        floor: f64,
    },
    /// Upward shift of a mean with an absolute floor on the value.
    Surge {
        /// Deviations.
        k: f64,
        /// Least deviation used.
        floor: f64,
        /// Least value that can alert.
        min_level: f64,
    },
}

impl Test {
    /// Judges `x` (with `volume` posts behind it) against `base`.
    /// `min_volume` guards every test.
    pub fn judge(self, x: f64, volume: u64, min_volume: u64, base: &Ewma) -> Verdict {
        let enough = volume >= min_volume;
        match self {
            Test::Spike { k, ratio } => {
                let s = base.dev().max(base.mean.max(0.0).sqrt()).max(1.0);
                let threshold = base.mean + k * s;
                let fires = enough && x >= threshold && x >= ratio * base.mean;
                Verdict {
                    fires,
                    clear: x < base.mean + 0.5 * k * s,
                    threshold,
                    excess: if fires {
                        (x - threshold) / (k * s)
                    } else {
                        0.0
                    },
                }
            }
            Test::Shift { k, floor } => {
                let s = base.dev().max(floor);
                let up = x >= base.mean;
                let threshold = if up {
                    base.mean + k * s
                } else {
                    base.mean - k * s
                };
                let dist = (x - base.mean).abs();
                let fires = enough && dist >= k * s;
                Verdict {
                    fires,
                    clear: !enough || dist < 0.5 * k * s,
                    threshold,
                    excess: if fires { (dist - k * s) / (k * s) } else { 0.0 },
                }
            }
            Test::Surge {
                k,
                floor,
                min_level,
            } => {
                let s = base.dev().max(floor);
                let threshold = (base.mean + k * s).max(min_level);
                let fires = enough && x >= threshold;
                Verdict {
                    fires,
                    clear: !enough || x < base.mean + 0.5 * k * s,
                    threshold,
                    excess: if fires {
                        (x - threshold) / (k * s)
                    } else {
                        0.0
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn warmed(samples: &[f64], alpha: f64) -> Ewma {
        let mut e = Ewma::default();
        for &x in samples {
            e.update(x, alpha);
        }
        e
    }

    #[test]
    fn alpha_follows_the_half_life() {
        // After one half-life's worth of buckets, an old sample weighs half.
        let a = Ewma::alpha(10.0, 60.0);
        assert!(((1.0 - a).powi(6) - 0.5).abs() < 1e-12);
        assert_eq!(Ewma::alpha(10.0, 0.0), 1.0);
    }

    #[test]
    fn a_constant_series_has_its_value_as_mean_and_no_deviation() {
        let e = warmed(&[5.0; 50], 0.1);
        assert!((e.mean - 5.0).abs() < 1e-12 && e.dev() < 1e-12);
        assert_eq!(e.n, 50);
    }

    #[test]
    fn the_mean_moves_halfway_to_a_new_level_in_one_half_life() {
        let a = Ewma::alpha(10.0, 100.0);
        let mut e = warmed(&[0.0; 20], a);
        for _ in 0..10 {
            e.update(1.0, a);
        }
        assert!((e.mean - 0.5).abs() < 1e-9, "{}", e.mean);
    }

    #[test]
    fn volume_spikes_need_k_deviations_the_ratio_and_the_minimum_volume() {
        // Alternating 18/22 posts a window: mean 20, deviation about 2;
        // the Poisson floor √20 ≈ 4.47 wins.
        let samples: Vec<f64> = (0..200)
            .map(|i| if i % 2 == 0 { 18.0 } else { 22.0 })
            .collect();
        let base = warmed(&samples, 0.05);
        let t = Test::Spike { k: 4.0, ratio: 2.0 };
        let s = 20f64.sqrt();
        let v = t.judge(20.0 + 4.0 * s, 100, 10, &base);
        assert!(!v.fires, "ratio 2 not reached: {v:?}");
        let v = t.judge(41.0, 41, 10, &base);
        assert!(v.fires && v.excess > 0.0 && !v.clear, "{v:?}");
        assert!(!t.judge(41.0, 41, 50, &base).fires, "minimum volume");
        assert!(t.judge(25.0, 25, 10, &base).clear);
        // A quiet entity (0.3 a window) does not alert on 3 posts: floor 1.
        let quiet = warmed(&[0.0, 0.0, 1.0].repeat(50), 0.05);
        assert!(!t.judge(3.0, 3, 3, &quiet).fires);
        assert!(t.judge(6.0, 6, 3, &quiet).fires);
    }

    #[test]
    fn sentiment_shifts_fire_both_ways_and_respect_the_floor() {
        let base = warmed(&[0.2; 100], 0.05); // σ = 0: the floor decides
        let t = Test::Shift {
            k: 3.0,
            floor: 0.05,
        };
        let v = t.judge(0.2 - 0.16, 40, 20, &base);
        assert!(v.fires && (v.threshold - 0.05).abs() < 1e-9, "{v:?}");
        assert!(t.judge(0.36, 40, 20, &base).fires);
        assert!(!t.judge(0.3, 40, 20, &base).fires);
        assert!(
            !t.judge(-0.9, 5, 20, &base).fires,
            "three posts do not make an alert"
        );
        assert!(t.judge(0.22, 40, 20, &base).clear);
        assert!(
            t.judge(-0.9, 5, 20, &base).clear,
            "too few posts to hold an alert"
        );
    }

    #[test]
    fn toxicity_surges_need_the_absolute_level_too() {
        let base = warmed(&[0.02; 100], 0.05);
        let t = Test::Surge {
            k: 3.0,
            floor: 0.02,
            min_level: 0.25,
        };
        assert!(
            !t.judge(0.15, 50, 20, &base).fires,
            "past 3σ but below the level"
        );
        let v = t.judge(0.4, 50, 20, &base);
        assert!(v.fires && v.threshold == 0.25, "{v:?}");
    }

    proptest! {
        #[test]
        fn the_mean_stays_within_the_samples_and_variance_is_never_negative(
            xs in proptest::collection::vec(-1e6f64..1e6, 1..200),
            alpha in 0.001f64..1.0,
        ) {
            let e = warmed(&xs, alpha);
            let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(e.mean >= lo - 1e-6 && e.mean <= hi + 1e-6);
            prop_assert!(e.var >= 0.0);
        }

        #[test]
        fn excess_is_zero_unless_firing_and_never_negative(
            x in -10.0f64..100.0, mean in 0.0f64..50.0, vol in 0u64..100,
        ) {
            let base = Ewma { mean, var: 1.0, n: 10 };
            for t in [
                Test::Spike { k: 3.0, ratio: 1.5 },
                Test::Shift { k: 3.0, floor: 0.05 },
                Test::Surge { k: 3.0, floor: 0.02, min_level: 0.2 },
            ] {
                let v = t.judge(x, vol, 10, &base);
                prop_assert!(v.excess >= 0.0);
                prop_assert!(v.fires || v.excess == 0.0);
                prop_assert!(!(v.fires && v.clear));
            }
        }
    }
}
