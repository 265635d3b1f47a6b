//! Counter-based random numbers: every value is a pure function of
//! `(index, step, seed, stream)`, so the CPU engine and the WGSL shaders
//! (`shaders/rng.wgsl`) draw exactly the same integers without sharing state.
//!
//! The mixer is the four-lane PCG hash (`pcg4d`, Jarzynski and Olano, "Hash
//! Functions for GPU Rendering", JCGT 2020): one LCG step on each lane, then two
//! rounds of lane cross-multiplication around a xorshift. All arithmetic is
//! wrapping `u32`, which is what WGSL's `u32` does.

/// Streams keep the draws of different purposes independent.
pub mod stream {
    /// Training batch: t, data index, eps.
    pub const BATCH: u32 = 0x0b17_c400;
    /// Training batch, second draw: the normals of a Gaussian-mixture component.
    pub const BATCH_GMM: u32 = 0x0b17_c401;
    /// Parameter initialisation.
    pub const INIT: u32 = 0x1417_0000;
    /// Sampler: initial noise `X_0`.
    pub const PRIOR: u32 = 0x5a40_0000;
    /// Sampler: Brownian increments of the SDE.
    pub const BROWNIAN: u32 = 0x5a40_0001;
    /// Data sets: drawing a toy data set into a point set.
    pub const DATA: u32 = 0xda7a_0000;
    /// Metrics: bootstrap resampling.
    pub const METRIC: u32 = 0xe7c0_0000;
}

/// The four-lane PCG hash. Same integers as `pcg4d` in `shaders/rng.wgsl`.
#[inline]
pub fn pcg4d(v: [u32; 4]) -> [u32; 4] {
    let mut v = v.map(|x| x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223));
    mix(&mut v);
    for x in &mut v {
        *x ^= *x >> 16;
    }
    mix(&mut v);
    v
}

#[inline]
fn mix(v: &mut [u32; 4]) {
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[3]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v[3] = v[3].wrapping_add(v[1].wrapping_mul(v[2]));
}

/// Four random words for one `(index, step, seed, stream)` counter.
#[inline]
pub fn draw(index: u32, step: u32, seed: u32, stream: u32) -> [u32; 4] {
    pcg4d([index, step, seed, stream])
}

/// A uniform number in the open interval `(0, 1)` from the top 23 bits of `word`
/// (so that `k + 0.5` is exact in `f32`).
#[inline]
pub fn uniform_open(word: u32) -> f32 {
    ((word >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// Two independent standard normals from two words (Box-Muller).
#[inline]
pub fn box_muller(w0: u32, w1: u32) -> [f32; 2] {
    let u1 = uniform_open(w0);
    let u2 = uniform_open(w1);
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = std::f32::consts::TAU * u2;
    [r * theta.cos(), r * theta.sin()]
}

/// A sequential generator built on the counter hash, for CPU-only work (data sets,
/// initialisation, metrics) where no shader twin is needed.
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u32,
    stream: u32,
    counter: u64,
    spare: Option<f32>,
}

impl Rng {
    /// A generator for one `(seed, stream)` pair.
    pub fn new(seed: u32, stream: u32) -> Self {
        Self {
            seed,
            stream,
            counter: 0,
            spare: None,
        }
    }

    fn words(&mut self) -> [u32; 4] {
        let c = self.counter;
        self.counter += 1;
        draw(c as u32, (c >> 32) as u32, self.seed, self.stream)
    }

    /// A uniform number in `(0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        uniform_open(self.words()[0])
    }

    /// A uniform number in `(lo, hi)`.
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// A uniform integer in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u32) -> u32 {
        index_below(self.words()[0], n)
    }

    /// A standard normal.
    pub fn normal(&mut self) -> f32 {
        if let Some(x) = self.spare.take() {
            return x;
        }
        let w = self.words();
        let [a, b] = box_muller(w[0], w[1]);
        self.spare = Some(b);
        a
    }
}

/// Maps a random word to `0..n` without division (Lemire's multiply-shift).
#[inline]
pub fn index_below(word: u32, n: u32) -> u32 {
    ((word as u64 * n as u64) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg4d_is_a_pure_function_and_mixes() {
        assert_eq!(pcg4d([1, 2, 3, 4]), pcg4d([1, 2, 3, 4]));
        let a = pcg4d([0, 0, 0, 0]);
        let b = pcg4d([1, 0, 0, 0]);
        // One flipped input bit changes about half of the 128 output bits.
        let flipped: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
        assert!((40..=88).contains(&flipped), "{flipped} bits changed");
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut rng = Rng::new(7, 1);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
    }

    #[test]
    fn uniforms_stay_inside_the_open_interval() {
        assert!(uniform_open(0) > 0.0);
        assert!(uniform_open(u32::MAX) < 1.0);
        assert_eq!(index_below(u32::MAX, 10), 9);
        assert_eq!(index_below(0, 10), 0);
    }
}
