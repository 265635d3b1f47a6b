//! Sample quality: sliced Wasserstein-2 over fixed projections and the energy
//! distance, each reported beside its floor (fresh data against fresh data) and its
//! ceiling (the noise `N(0, I)` against data) (MATH.md, "Sample quality").

use serde::{Deserialize, Serialize};

use super::data::DataSet;
use super::path::Vec2;
use super::rng::{Rng, stream};

/// Number of projection directions, evenly spaced angles in `[0, pi)`.
pub const PROJECTIONS: usize = 128;
/// The energy distance uses at most this many points of each set (it is O(n^2)).
pub const ENERGY_POINTS: usize = 2048;

/// Sliced Wasserstein-2 distance: `sqrt(mean over directions of W2^2 of the 1-D
/// projections)`. Sets of different sizes are matched by quantiles.
pub fn sliced_w2(a: &[Vec2], b: &[Vec2]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut pa = vec![0.0f64; small.len()];
    let mut pb = vec![0.0f64; large.len()];
    let mut total = 0.0;
    for k in 0..PROJECTIONS {
        let th = std::f64::consts::PI * (k as f64 + 0.5) / PROJECTIONS as f64;
        let (c, s) = (th.cos(), th.sin());
        for (o, p) in pa.iter_mut().zip(small) {
            *o = c * p[0] as f64 + s * p[1] as f64;
        }
        for (o, p) in pb.iter_mut().zip(large) {
            *o = c * p[0] as f64 + s * p[1] as f64;
        }
        pa.sort_unstable_by(f64::total_cmp);
        pb.sort_unstable_by(f64::total_cmp);
        let (n, m) = (pa.len(), pb.len());
        let w2: f64 = pa
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let j = (((i as f64 + 0.5) / n as f64) * m as f64) as usize;
                let d = x - pb[j.min(m - 1)];
                d * d
            })
            .sum::<f64>()
            / n as f64;
        total += w2;
    }
    (total / PROJECTIONS as f64).sqrt()
}

fn mean_distance(a: &[Vec2], b: &[Vec2]) -> f64 {
    let mut sum = 0.0f64;
    for p in a {
        let mut row = 0.0f32;
        for q in b {
            let (dx, dy) = (p[0] - q[0], p[1] - q[1]);
            row += (dx * dx + dy * dy).sqrt();
        }
        sum += row as f64;
    }
    sum / (a.len() as f64 * b.len() as f64)
}

/// Energy distance `2 E|X - Y| - E|X - X'| - E|Y - Y'|` (V-statistics, so identical
/// sets give 0), on the first [`ENERGY_POINTS`] points of each set.
pub fn energy_distance(a: &[Vec2], b: &[Vec2]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let a = &a[..a.len().min(ENERGY_POINTS)];
    let b = &b[..b.len().min(ENERGY_POINTS)];
    (2.0 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b)).max(0.0)
}

/// Both metrics with their floors and ceilings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Sliced W2 of the samples against fresh data.
    pub sliced_w2: f64,
    /// Sliced W2 of fresh data against other fresh data of the same size.
    pub sliced_w2_floor: f64,
    /// Sliced W2 of `N(0, I)` against fresh data.
    pub sliced_w2_ceiling: f64,
    /// Energy distance of the samples against fresh data.
    pub energy: f64,
    /// Energy distance of fresh data against fresh data.
    pub energy_floor: f64,
    /// Energy distance of `N(0, I)` against fresh data.
    pub energy_ceiling: f64,
}

/// How many fresh sets the floors are averaged over (one draw is too noisy to divide by).
pub const FLOOR_DRAWS: u32 = 4;

/// Scores `samples` (model coordinates) against `data`: each metric against one fresh
/// reference set of the same size, its floor the mean over [`FLOOR_DRAWS`] other fresh
/// sets against that reference, its ceiling `N(0, I)` against it.
pub fn evaluate(data: &DataSet, samples: &[Vec2], seed: u32) -> Quality {
    let n = samples.len().max(1);
    let base = seed.wrapping_mul(FLOOR_DRAWS + 1);
    let reference = data.fresh(n, base);
    let (mut sw_floor, mut e_floor) = (0.0, 0.0);
    for j in 1..=FLOOR_DRAWS {
        let other = data.fresh(n, base.wrapping_add(j));
        sw_floor += sliced_w2(&other, &reference) / FLOOR_DRAWS as f64;
        e_floor += energy_distance(&other, &reference) / FLOOR_DRAWS as f64;
    }
    let mut rng = Rng::new(seed, stream::METRIC ^ 0x55);
    let noise: Vec<Vec2> = (0..n).map(|_| [rng.normal(), rng.normal()]).collect();
    Quality {
        sliced_w2: sliced_w2(samples, &reference),
        sliced_w2_floor: sw_floor,
        sliced_w2_ceiling: sliced_w2(&noise, &reference),
        energy: energy_distance(samples, &reference),
        energy_floor: e_floor,
        energy_ceiling: energy_distance(&noise, &reference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::Toy;

    #[test]
    fn sliced_w2_of_a_shift_is_the_projected_shift() {
        let mut rng = Rng::new(1, 2);
        let a: Vec<Vec2> = (0..1000).map(|_| [rng.normal(), rng.normal()]).collect();
        let b: Vec<Vec2> = a.iter().map(|p| [p[0] + 1.0, p[1]]).collect();
        // W2^2 along direction theta is cos^2 theta; its mean over angles is 1/2.
        let d = sliced_w2(&a, &b);
        assert!((d - 0.5f64.sqrt()).abs() < 1e-3, "{d}");
        assert!(sliced_w2(&a, &a) < 1e-12);
    }

    #[test]
    fn energy_separates_different_sets() {
        let mut rng = Rng::new(1, 3);
        let a: Vec<Vec2> = (0..500).map(|_| [rng.normal(), rng.normal()]).collect();
        let b: Vec<Vec2> = (0..500)
            .map(|_| [rng.normal() + 2.0, rng.normal()])
            .collect();
        assert!(energy_distance(&a, &a) < 1e-9);
        assert!(energy_distance(&a, &b) > 1.0);
    }

    #[test]
    fn floor_is_below_ceiling() {
        let d = DataSet::toy(Toy::Moons, 0);
        let q = evaluate(&d, &d.fresh(2000, 99), 5);
        assert!(q.sliced_w2_floor < 0.2 * q.sliced_w2_ceiling, "{q:?}");
        assert!(q.energy_floor < 0.1 * q.energy_ceiling, "{q:?}");
        assert!(q.sliced_w2 < 2.0 * q.sliced_w2_floor, "{q:?}");
    }
}
