//! Percentiles, and the paired ratios described in "How the figures are measured" in
//! BENCHMARKS.md: each method's block median divided by the mean of the two raw medians that
//! bracket it in the same round.

/// The `q`-quantile (0 to 1) of sorted samples, by nearest rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of unsorted samples (sorts them).
pub fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    quantile(v, 0.5)
}

/// The median of floats (sorts them); NaN if empty.
pub fn median_f(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Pooled distribution figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dist {
    pub samples: usize,
    pub median: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Dist {
    /// Sorts `v` and summarises it.
    pub fn of(v: &mut [u64]) -> Dist {
        v.sort_unstable();
        Dist {
            samples: v.len(),
            median: quantile(v, 0.5),
            p99: quantile(v, 0.99),
            p999: quantile(v, 0.999),
            max: v.last().copied().unwrap_or(0),
        }
    }
}

/// Two raw medians are a stable bracket if they are within 20% of each other.
pub const STABLE: f64 = 1.2;

/// The raw bands ("How the figures are measured" in BENCHMARKS.md), by the mean of a round's
/// two raw medians.
pub const BANDS: [(&str, u64, u64); 3] = [
    ("lt100", 0, 100),
    ("100_250", 100, 250),
    ("gt250", 250, u64::MAX),
];

/// One round's figures for one method.
#[derive(Clone, Copy, Debug)]
pub struct RoundFigure {
    /// The mean of the round's two raw medians.
    pub raw: f64,
    /// Whether the two raw medians were within 20%.
    pub stable: bool,
    /// This method's block median over `raw`.
    pub ratio: f64,
}

/// The paired-ratio summary of one method over all rounds.
#[derive(Clone, Debug, Default)]
pub struct Paired {
    pub rounds: usize,
    pub stable: usize,
    /// The median of the stable rounds' ratios: the figure to compare.
    pub ratio: f64,
    /// Per band: (name, stable rounds in it, median ratio, median raw).
    pub bands: Vec<(&'static str, usize, f64, f64)>,
}

impl Paired {
    pub fn of(rounds: &[RoundFigure]) -> Paired {
        let stable: Vec<&RoundFigure> = rounds.iter().filter(|r| r.stable).collect();
        let mut ratios: Vec<f64> = stable.iter().map(|r| r.ratio).collect();
        let bands = BANDS
            .iter()
            .map(|&(name, lo, hi)| {
                let inside: Vec<&&RoundFigure> = stable
                    .iter()
                    .filter(|r| r.raw >= lo as f64 && r.raw < hi as f64)
                    .collect();
                let mut rs: Vec<f64> = inside.iter().map(|r| r.ratio).collect();
                let mut raws: Vec<f64> = inside.iter().map(|r| r.raw).collect();
                (name, rs.len(), median_f(&mut rs), median_f(&mut raws))
            })
            .collect();
        Paired {
            rounds: rounds.len(),
            stable: stable.len(),
            ratio: median_f(&mut ratios),
            bands,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&[7], 0.999), 7);
    }

    #[test]
    fn paired_keeps_stable_rounds() {
        let r = |raw, stable, ratio| RoundFigure { raw, stable, ratio };
        let p = Paired::of(&[
            r(90.0, true, 2.0),
            r(120.0, true, 1.5),
            r(400.0, false, 9.0),
        ]);
        assert_eq!((p.rounds, p.stable), (3, 2));
        assert_eq!(p.ratio, 1.75);
        assert_eq!(p.bands[0].1, 1);
        assert_eq!(p.bands[2].1, 0);
    }
}
