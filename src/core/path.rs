//! The Gaussian conditional probability path `p_t(x | z) = N(alpha_t z, beta_t^2 I)`,
//! the regression targets of the three losses, and the conversions between a score and
//! a vector field (MATH.md, "The Gaussian conditional probability path", "Training
//! losses", "Converting between score and vector field").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::schedule::{Coeffs, Schedule};

/// 2-D vectors are plain arrays: they go into flat buffers as they are.
pub type Vec2 = [f32; 2];

/// Plain DSM and the singular-at-one schedules sample `t` from `[0, 1 - DSM_DELTA]`,
/// because the target `-eps / beta_t` (or `beta_dot`) blows up as `beta_t -> 0`.
pub const DSM_DELTA: f32 = 0.05;

/// Conversions divide by `alpha_t` (score to field) or `beta_t` (field to score);
/// samplers evaluate the network and every conversion at `t` clamped to
/// `[T_GUARD, 1 - T_GUARD]`, so no formula meets `alpha = 0` or `beta = 0`.
pub const T_GUARD: f32 = 0.01;

/// The training objective, which also says what the network outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Conditional flow matching: the network is a vector field `u_theta`, the target
    /// `alpha_dot z + beta_dot eps`.
    #[default]
    Cfm,
    /// Denoising score matching: the network is a score `s_theta`, the target
    /// `-eps / beta`, with `t` in `[0, 1 - DSM_DELTA]`.
    Dsm,
    /// Noise prediction: the network is `eps_theta`, with `s_theta = -eps_theta / beta`,
    /// the target `eps` (DSM weighted by `beta^2`).
    DsmEps,
}

impl Loss {
    /// Every loss, in menu order.
    pub const ALL: [Loss; 3] = [Loss::Cfm, Loss::Dsm, Loss::DsmEps];

    /// A small integer naming the loss for shaders.
    pub fn shader_code(self) -> u32 {
        match self {
            Self::Cfm => 0,
            Self::Dsm => 1,
            Self::DsmEps => 2,
        }
    }

    /// What the network's output means, in words for the UI.
    pub fn output_name(self) -> &'static str {
        match self {
            Self::Cfm => "vector field u",
            Self::Dsm => "score s",
            Self::DsmEps => "noise eps (s = -eps / beta)",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cfm => "cfm",
            Self::Dsm => "dsm",
            Self::DsmEps => "dsm-eps",
        })
    }
}

impl FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cfm" => Ok(Self::Cfm),
            "dsm" => Ok(Self::Dsm),
            "dsm-eps" => Ok(Self::DsmEps),
            _ => Err(format!("unknown loss '{s}' (expected cfm, dsm or dsm-eps)")),
        }
    }
}

/// The interval training draws `t` from: `[0, 1)`, or `[0, 1 - DSM_DELTA]` for plain DSM
/// and for schedules whose derivative is singular at `t = 1`.
pub fn t_max(loss: Loss, schedule: Schedule) -> f32 {
    if loss == Loss::Dsm || schedule.singular_at_one() {
        1.0 - DSM_DELTA
    } else {
        1.0
    }
}

/// `x = alpha z + beta eps`: a sample of `p_t(x | z)`.
#[inline]
pub fn sample_xt(c: Coeffs, z: Vec2, eps: Vec2) -> Vec2 {
    [
        c.alpha * z[0] + c.beta * eps[0],
        c.alpha * z[1] + c.beta * eps[1],
    ]
}

/// The regression target of `loss` for the pair `(z, eps)`.
#[inline]
pub fn target(loss: Loss, c: Coeffs, z: Vec2, eps: Vec2) -> Vec2 {
    match loss {
        Loss::Cfm => [
            c.alpha_dot * z[0] + c.beta_dot * eps[0],
            c.alpha_dot * z[1] + c.beta_dot * eps[1],
        ],
        Loss::Dsm => [-eps[0] / c.beta, -eps[1] / c.beta],
        Loss::DsmEps => eps,
    }
}

/// The conditional vector field `u_t(x | z) = (alpha_dot - beta_dot / beta alpha) z +
/// (beta_dot / beta) x` (singular at `beta = 0`).
pub fn conditional_field(c: Coeffs, x: Vec2, z: Vec2) -> Vec2 {
    let r = c.beta_dot / c.beta;
    let a = c.alpha_dot - r * c.alpha;
    [a * z[0] + r * x[0], a * z[1] + r * x[1]]
}

/// The conditional score `-(x - alpha z) / beta^2`.
pub fn conditional_score(c: Coeffs, x: Vec2, z: Vec2) -> Vec2 {
    let b2 = c.beta * c.beta;
    [-(x[0] - c.alpha * z[0]) / b2, -(x[1] - c.alpha * z[1]) / b2]
}

/// `u = (beta^2 alpha_dot / alpha - beta_dot beta) s + (alpha_dot / alpha) x`.
/// Singular at `alpha = 0`: call with `t >= T_GUARD`.
pub fn field_from_score(c: Coeffs, x: Vec2, s: Vec2) -> Vec2 {
    let a = c.beta * c.beta * c.alpha_dot / c.alpha - c.beta_dot * c.beta;
    let b = c.alpha_dot / c.alpha;
    [a * s[0] + b * x[0], a * s[1] + b * x[1]]
}

/// `s = (alpha u - alpha_dot x) / (beta (beta alpha_dot - alpha beta_dot))`.
/// Singular at `beta = 0`: call with `t <= 1 - T_GUARD`.
pub fn score_from_field(c: Coeffs, x: Vec2, u: Vec2) -> Vec2 {
    let d = 1.0 / (c.beta * (c.beta * c.alpha_dot - c.alpha * c.beta_dot));
    [
        (c.alpha * u[0] - c.alpha_dot * x[0]) * d,
        (c.alpha * u[1] - c.alpha_dot * x[1]) * d,
    ]
}

/// The conditional path of one data point at time `t`: `p_t(x | z)` is the Gaussian
/// with this centre `alpha_t z` and standard deviation `beta_t`.
pub fn conditional_circle(schedule: Schedule, z: Vec2, t: f32) -> (Vec2, f32) {
    let c = schedule.coeffs(t);
    ([c.alpha * z[0], c.alpha * z[1]], c.beta)
}

/// The time at which samplers evaluate the network and the conversions.
#[inline]
pub fn guarded_time(t: f32) -> f32 {
    t.clamp(T_GUARD, 1.0 - T_GUARD)
}

/// The vector field and the score that a network output `out` stands for, at `x` and
/// the (already guarded) coefficients `c`.
pub fn field_and_score(loss: Loss, c: Coeffs, x: Vec2, out: Vec2) -> (Vec2, Vec2) {
    match loss {
        Loss::Cfm => (out, score_from_field(c, x, out)),
        Loss::Dsm => (field_from_score(c, x, out), out),
        Loss::DsmEps => {
            let s = [-out[0] / c.beta, -out[1] / c.beta];
            (field_from_score(c, x, s), s)
        }
    }
}

/// What the network should output at `x` given the exact marginal field `u` and score
/// `s`: the posterior mean of the conditional target (used for `L_FM`).
pub fn marginal_target(loss: Loss, c: Coeffs, u: Vec2, s: Vec2) -> Vec2 {
    match loss {
        Loss::Cfm => u,
        Loss::Dsm => s,
        Loss::DsmEps => [-c.beta * s[0], -c.beta * s[1]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULES: [Schedule; 4] = [
        Schedule::CondOt,
        Schedule::Cosine,
        Schedule::SqrtBeta,
        Schedule::Poly(2.0),
    ];

    #[test]
    fn conditional_field_at_the_sample_is_the_cfm_target() {
        for sched in SCHEDULES {
            let c = sched.coeffs(0.37);
            let (z, eps) = ([1.5, -0.5], [0.3, 0.8]);
            let x = sample_xt(c, z, eps);
            let u = conditional_field(c, x, z);
            let t = target(Loss::Cfm, c, z, eps);
            assert!((u[0] - t[0]).abs() < 1e-5 && (u[1] - t[1]).abs() < 1e-5);
            let s = conditional_score(c, x, z);
            let ts = target(Loss::Dsm, c, z, eps);
            assert!((s[0] - ts[0]).abs() < 1e-4 && (s[1] - ts[1]).abs() < 1e-4);
        }
    }

    #[test]
    fn condot_target_is_z_minus_eps() {
        let c = Schedule::CondOt.coeffs(0.6);
        assert_eq!(target(Loss::Cfm, c, [2.0, 1.0], [0.5, -1.0]), [1.5, 2.0]);
    }

    #[test]
    fn conversions_round_trip_for_every_schedule() {
        for sched in SCHEDULES {
            for i in 1..20 {
                let c = sched.coeffs(i as f32 / 20.0);
                let x = [0.7, -1.2];
                let s = [-0.4, 2.1];
                let u = field_from_score(c, x, s);
                let s2 = score_from_field(c, x, u);
                assert!(
                    (s[0] - s2[0]).abs() < 1e-3 && (s[1] - s2[1]).abs() < 1e-3,
                    "{sched} at {i}: {s:?} vs {s2:?}"
                );
            }
        }
    }

    #[test]
    fn conversion_maps_the_conditional_score_to_the_conditional_field() {
        // Conditioned on z, E[z | x] = z, so the conversion is exact for one point.
        for sched in SCHEDULES {
            let c = sched.coeffs(0.55);
            let (x, z) = ([0.2, 0.9], [1.0, -2.0]);
            let u = field_from_score(c, x, conditional_score(c, x, z));
            let u_ref = conditional_field(c, x, z);
            assert!((u[0] - u_ref[0]).abs() < 1e-4 && (u[1] - u_ref[1]).abs() < 1e-4);
        }
    }

    #[test]
    fn condot_score_formula() {
        // MATH.md: for CondOT, s = (t u - x) / (1 - t).
        let t = 0.3;
        let c = Schedule::CondOt.coeffs(t);
        let (x, u) = ([0.5, 1.5], [2.0, -1.0]);
        let s = score_from_field(c, x, u);
        for k in 0..2 {
            assert!((s[k] - (t * u[k] - x[k]) / (1.0 - t)).abs() < 1e-5);
        }
    }

    #[test]
    fn conditional_path_runs_from_noise_to_the_point() {
        let z = [2.0, -1.0];
        assert_eq!(
            conditional_circle(Schedule::CondOt, z, 0.0),
            ([0.0, 0.0], 1.0)
        );
        assert_eq!(conditional_circle(Schedule::CondOt, z, 1.0), (z, 0.0));
        let (m, r) = conditional_circle(Schedule::Cosine, z, 0.5);
        assert!((m[0] - 2.0 * 0.5f32.sqrt()).abs() < 1e-6 && (r - 0.5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn t_ranges() {
        assert_eq!(t_max(Loss::Cfm, Schedule::CondOt), 1.0);
        assert_eq!(t_max(Loss::Dsm, Schedule::CondOt), 1.0 - DSM_DELTA);
        assert_eq!(t_max(Loss::Cfm, Schedule::SqrtBeta), 1.0 - DSM_DELTA);
        assert_eq!(guarded_time(0.0), T_GUARD);
        assert_eq!(guarded_time(1.0), 1.0 - T_GUARD);
    }
}
