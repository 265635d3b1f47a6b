//! Exact marginal density, vector field and score of the probability path for data
//! given as an equal-weight [`Mixture`] of isotropic Gaussians and points (MATH.md,
//! "Exact marginals").
//!
//! For component `k` with mean `mu`, standard deviation `s` and the path at time `t`,
//! `x_t | k ~ N(alpha mu, v I)` with `v = alpha^2 s^2 + beta^2`. With `d = x - alpha mu`
//! and posterior weights `w_k` (a softmax, computed with a running log-sum-exp):
//! - `p_t(x) = mean_k N(x; alpha mu, v I)`,
//! - `s_t(x) = sum_k w_k (-d / v)`,
//! - `u_t(x) = sum_k w_k (alpha_dot E[z | x, k] + beta_dot beta d / v)` with
//!   `E[z | x, k] = mu + alpha s^2 d / v`.
//!
//! The field formula is `E[u_t(x | z) | x]` written so that nothing divides by `alpha`;
//! for points (`s = 0`) it is the empirical formula of MATH.md. Everything runs in `f64`.

use super::data::Mixture;
use super::path::Vec2;
use super::schedule::Schedule;

/// The exact marginal quantities at one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Marginal {
    /// `log p_t(x)`.
    pub log_density: f64,
    /// `u_t(x)`.
    pub field: [f64; 2],
    /// `s_t(x) = grad log p_t(x)`.
    pub score: [f64; 2],
}

impl Marginal {
    /// The field in `f32`.
    pub fn field32(&self) -> Vec2 {
        [self.field[0] as f32, self.field[1] as f32]
    }

    /// The score in `f32`.
    pub fn score32(&self) -> Vec2 {
        [self.score[0] as f32, self.score[1] as f32]
    }
}

/// The largest `t` evaluated: at `t = 1` a point set's density is a sum of deltas.
pub const T_MAX_EXACT: f64 = 1.0 - 1e-6;

/// Exact `p_t`, `u_t` and `s_t` of `mixture` at `x`.
pub fn marginal(mixture: &Mixture, schedule: Schedule, t: f32, x: Vec2) -> Marginal {
    let t = (t as f64).clamp(0.0, T_MAX_EXACT);
    let alpha = schedule.alpha(t);
    let beta = schedule.beta(t);
    let alpha_dot = schedule.alpha_dot(t);
    let beta_dot = schedule.beta_dot(t);
    let (x0, x1) = (x[0] as f64, x[1] as f64);
    let b2 = beta * beta;

    // Running log-sum-exp: `m` is the largest log weight so far, `total` the sum of
    // exp(log w - m), and the accumulators are scaled the same way.
    let mut m = f64::NEG_INFINITY;
    let mut total = 0.0;
    let mut acc_s = [0.0f64; 2];
    let mut acc_u = [0.0f64; 2];
    for c in &mixture.components {
        let s2 = (c.std as f64) * (c.std as f64);
        let v = alpha * alpha * s2 + b2;
        let d = [x0 - alpha * c.mean[0] as f64, x1 - alpha * c.mean[1] as f64];
        let logw = -(d[0] * d[0] + d[1] * d[1]) / (2.0 * v) - (std::f64::consts::TAU * v).ln();
        let score = [-d[0] / v, -d[1] / v];
        let ez = [
            c.mean[0] as f64 + alpha * s2 * d[0] / v,
            c.mean[1] as f64 + alpha * s2 * d[1] / v,
        ];
        let field = [
            alpha_dot * ez[0] + beta_dot * beta * d[0] / v,
            alpha_dot * ez[1] + beta_dot * beta * d[1] / v,
        ];
        if logw > m {
            let r = (m - logw).exp();
            total *= r;
            for k in 0..2 {
                acc_s[k] *= r;
                acc_u[k] *= r;
            }
            m = logw;
        }
        let w = (logw - m).exp();
        total += w;
        for k in 0..2 {
            acc_s[k] += w * score[k];
            acc_u[k] += w * field[k];
        }
    }
    let n = mixture.len().max(1) as f64;
    Marginal {
        log_density: m + total.ln() - n.ln(),
        field: [acc_u[0] / total, acc_u[1] / total],
        score: [acc_s[0] / total, acc_s[1] / total],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::data::{Component, DataSet, Toy};
    use crate::core::path::{conditional_field, field_from_score, sample_xt};
    use crate::core::rng::Rng;

    #[test]
    fn at_time_zero_the_marginal_is_the_standard_normal() {
        let d = DataSet::toy(Toy::Moons, 0);
        let x = [0.3, -0.8];
        let m = marginal(&d.mixture, Schedule::CondOt, 0.0, x);
        let expect = -(0.09 + 0.64) / 2.0 - std::f64::consts::TAU.ln();
        assert!((m.log_density - expect).abs() < 1e-6);
        assert!((m.score[0] + 0.3).abs() < 1e-6 && (m.score[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn density_integrates_to_one_and_score_is_its_gradient() {
        let d = DataSet::toy(Toy::Gmm5, 0);
        for sched in [Schedule::CondOt, Schedule::Cosine] {
            let t = 0.6;
            let (h, lim) = (0.05f32, 8.0f32);
            let n = (2.0 * lim / h) as i32;
            let mut mass = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let x = [-lim + (i as f32 + 0.5) * h, -lim + (j as f32 + 0.5) * h];
                    mass += marginal(&d.mixture, sched, t, x).log_density.exp() * (h * h) as f64;
                }
            }
            assert!((mass - 1.0).abs() < 1e-3, "{sched}: mass {mass}");
            let x = [1.1f32, 2.3f32];
            let e = 1e-3f32;
            let m = marginal(&d.mixture, sched, t, x);
            let lp = |x: Vec2| marginal(&d.mixture, sched, t, x).log_density;
            let g0 = (lp([x[0] + e, x[1]]) - lp([x[0] - e, x[1]])) / (2.0 * e as f64);
            let g1 = (lp([x[0], x[1] + e]) - lp([x[0], x[1] - e])) / (2.0 * e as f64);
            assert!((g0 - m.score[0]).abs() < 1e-3 && (g1 - m.score[1]).abs() < 1e-3);
        }
    }

    #[test]
    fn field_agrees_with_the_score_conversion() {
        let d = DataSet::toy(Toy::EightGaussians, 0);
        for sched in [Schedule::CondOt, Schedule::Cosine, Schedule::SqrtBeta] {
            for t in [0.2f32, 0.5, 0.8] {
                let x = [0.7, -1.9];
                let m = marginal(&d.mixture, sched, t, x);
                let u = field_from_score(sched.coeffs(t), x, m.score32());
                let uf = m.field32();
                assert!(
                    (u[0] - uf[0]).abs() < 1e-3 && (u[1] - uf[1]).abs() < 1e-3,
                    "{sched} {t}: {u:?} vs {uf:?}"
                );
            }
        }
    }

    /// `u_t(x) = E[u_t(x | z) | x_t = x]`, estimated by Monte Carlo: draw many (z, eps),
    /// keep the pairs whose `x_t` lands in a small box around `x`, average their
    /// conditional fields.
    #[test]
    fn marginal_field_matches_a_monte_carlo_posterior_mean() {
        let points: Vec<Vec2> = vec![[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5], [0.5, -2.0]];
        let mix = crate::core::data::Mixture {
            components: points
                .iter()
                .map(|&mean| Component { mean, std: 0.3 })
                .collect(),
        };
        let sched = Schedule::CondOt;
        let t = 0.5f32;
        let c = sched.coeffs(t);
        let x = [0.4f32, 0.6f32];
        let half = 0.05f32;
        let mut rng = Rng::new(11, 0);
        let (mut sum, mut n) = ([0.0f64; 2], 0usize);
        for _ in 0..4_000_000 {
            let z = mix.sample_one(&mut rng);
            let eps = [rng.normal(), rng.normal()];
            let xt = sample_xt(c, z, eps);
            if (xt[0] - x[0]).abs() < half && (xt[1] - x[1]).abs() < half {
                let u = conditional_field(c, xt, z);
                sum[0] += u[0] as f64;
                sum[1] += u[1] as f64;
                n += 1;
            }
        }
        assert!(n > 2000, "only {n} samples in the box");
        let mc = [sum[0] / n as f64, sum[1] / n as f64];
        let exact = marginal(&mix, sched, t, x).field;
        let tol = 4.0 * 2.0 / (n as f64).sqrt() + 0.02;
        assert!(
            (mc[0] - exact[0]).abs() < tol && (mc[1] - exact[1]).abs() < tol,
            "MC {mc:?} vs exact {exact:?} (n = {n}, tol {tol})"
        );
    }
}
