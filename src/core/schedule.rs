//! Schedules `alpha_t, beta_t` of the Gaussian probability path and the diffusion
//! coefficient `sigma_t` (MATH.md, "Conventions").
//!
//! Every schedule meets `alpha_0 = 0, beta_0 = 1, alpha_1 = 1, beta_1 = 0` and gives
//! its time derivatives in closed form (`alpha_dot`, `beta_dot`).

use std::f64::consts::FRAC_PI_2;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A noise schedule `alpha_t, beta_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Schedule {
    /// CondOT / linear: `alpha = t`, `beta = 1 - t`. The default.
    #[default]
    CondOt,
    /// Cosine (variance preserving): `alpha = sin(pi t / 2)`, `beta = cos(pi t / 2)`.
    Cosine,
    /// Square-root beta (the course's lab two): `alpha = t`, `beta = sqrt(1 - t)`.
    /// `beta_dot` is singular at `t = 1`.
    SqrtBeta,
    /// Polynomial: `alpha = t^k`, `beta = 1 - t`, with `k >= 1`.
    Poly(f64),
}

/// The four numbers of a schedule at one time, in `f32` for the engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coeffs {
    /// `alpha_t`
    pub alpha: f32,
    /// `beta_t`
    pub beta: f32,
    /// `d alpha / dt`
    pub alpha_dot: f32,
    /// `d beta / dt`
    pub beta_dot: f32,
}

impl Schedule {
    /// The smallest and largest polynomial exponent accepted.
    pub const POLY_RANGE: (f64, f64) = (1.0, 8.0);

    /// `alpha_t`.
    pub fn alpha(self, t: f64) -> f64 {
        match self {
            Self::CondOt | Self::SqrtBeta => t,
            Self::Cosine => (FRAC_PI_2 * t).sin(),
            Self::Poly(k) => t.powf(k),
        }
    }

    /// `beta_t`.
    pub fn beta(self, t: f64) -> f64 {
        match self {
            Self::CondOt | Self::Poly(_) => 1.0 - t,
            Self::Cosine => (FRAC_PI_2 * t).cos(),
            Self::SqrtBeta => (1.0 - t).max(0.0).sqrt(),
        }
    }

    /// `d alpha_t / dt`.
    pub fn alpha_dot(self, t: f64) -> f64 {
        match self {
            Self::CondOt | Self::SqrtBeta => 1.0,
            Self::Cosine => FRAC_PI_2 * (FRAC_PI_2 * t).cos(),
            Self::Poly(k) => k * t.powf(k - 1.0),
        }
    }

    /// `d beta_t / dt` (infinite at `t = 1` for `sqrt-beta`).
    pub fn beta_dot(self, t: f64) -> f64 {
        match self {
            Self::CondOt | Self::Poly(_) => -1.0,
            Self::Cosine => -FRAC_PI_2 * (FRAC_PI_2 * t).sin(),
            Self::SqrtBeta => -0.5 / (1.0 - t).max(0.0).sqrt(),
        }
    }

    /// Whether a derivative is singular at `t = 1`, so that training must keep `t`
    /// away from it.
    pub fn singular_at_one(self) -> bool {
        matches!(self, Self::SqrtBeta)
    }

    /// All four numbers at `t`, in `f32`.
    pub fn coeffs(self, t: f32) -> Coeffs {
        let t = t as f64;
        Coeffs {
            alpha: self.alpha(t) as f32,
            beta: self.beta(t) as f32,
            alpha_dot: self.alpha_dot(t) as f32,
            beta_dot: self.beta_dot(t) as f32,
        }
    }

    /// A small integer naming the schedule for shaders, with its parameter.
    pub fn shader_code(self) -> (u32, f32) {
        match self {
            Self::CondOt => (0, 1.0),
            Self::Cosine => (1, 1.0),
            Self::SqrtBeta => (2, 1.0),
            Self::Poly(k) => (3, k as f32),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CondOt => write!(f, "condot"),
            Self::Cosine => write!(f, "cosine"),
            Self::SqrtBeta => write!(f, "sqrt-beta"),
            Self::Poly(k) => write!(f, "poly:{k}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "condot" | "linear" => Ok(Self::CondOt),
            "cosine" => Ok(Self::Cosine),
            "sqrt-beta" => Ok(Self::SqrtBeta),
            _ => {
                let Some(k) = s.strip_prefix("poly:") else {
                    return Err(format!(
                        "unknown schedule '{s}' (expected condot, cosine, sqrt-beta or poly:K)"
                    ));
                };
                let k: f64 = k
                    .parse()
                    .map_err(|_| format!("schedule '{s}': K must be a number, as in poly:2"))?;
                let (lo, hi) = Self::POLY_RANGE;
                if !(lo..=hi).contains(&k) {
                    return Err(format!("schedule '{s}': K must lie in [{lo}, {hi}]"));
                }
                Ok(Self::Poly(k))
            }
        }
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// How the diffusion coefficient depends on time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigmaMode {
    /// `sigma_t = sigma`.
    #[default]
    Const,
    /// `sigma_t = sigma * beta_t`: vanishes at the data end, as the course recommends.
    Beta,
}

impl FromStr for SigmaMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "const" => Ok(Self::Const),
            "beta" => Ok(Self::Beta),
            _ => Err(format!("unknown sigma mode '{s}' (expected const or beta)")),
        }
    }
}

impl fmt::Display for SigmaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Const => "const",
            Self::Beta => "beta",
        })
    }
}

/// The diffusion coefficient `sigma_t` of the SDE sampler. `sigma = 0` is the ODE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diffusion {
    /// The scale `sigma >= 0`.
    pub sigma: f32,
    /// Constant or proportional to `beta_t`.
    pub mode: SigmaMode,
}

impl Diffusion {
    /// `sigma_t` under `schedule`.
    pub fn sigma_t(self, schedule: Schedule, t: f32) -> f32 {
        match self.mode {
            SigmaMode::Const => self.sigma,
            SigmaMode::Beta => self.sigma * schedule.beta(t as f64) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Schedule; 5] = [
        Schedule::CondOt,
        Schedule::Cosine,
        Schedule::SqrtBeta,
        Schedule::Poly(2.0),
        Schedule::Poly(3.5),
    ];

    #[test]
    fn endpoints_hold() {
        for s in ALL {
            assert!(s.alpha(0.0).abs() < 1e-12, "{s}");
            assert!((s.beta(0.0) - 1.0).abs() < 1e-12, "{s}");
            assert!((s.alpha(1.0) - 1.0).abs() < 1e-12, "{s}");
            assert!(s.beta(1.0).abs() < 1e-12, "{s}");
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for s in ALL {
            for i in 1..50 {
                let t = i as f64 / 50.0;
                let fd_a = (s.alpha(t + h) - s.alpha(t - h)) / (2.0 * h);
                let fd_b = (s.beta(t + h) - s.beta(t - h)) / (2.0 * h);
                assert!((fd_a - s.alpha_dot(t)).abs() < 1e-6, "{s} alpha_dot at {t}");
                assert!((fd_b - s.beta_dot(t)).abs() < 1e-6, "{s} beta_dot at {t}");
            }
        }
    }

    #[test]
    fn monotone() {
        for s in ALL {
            for i in 0..100 {
                let (t0, t1) = (i as f64 / 100.0, (i + 1) as f64 / 100.0);
                assert!(s.alpha(t1) > s.alpha(t0), "{s}");
                assert!(s.beta(t1) < s.beta(t0), "{s}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for s in ALL {
            assert_eq!(s.to_string().parse::<Schedule>(), Ok(s));
        }
        assert!("poly:0.5".parse::<Schedule>().is_err());
        assert!("poly:x".parse::<Schedule>().is_err());
        assert!("cosin".parse::<Schedule>().is_err());
    }

    #[test]
    fn sigma_modes() {
        let d = Diffusion {
            sigma: 0.5,
            mode: SigmaMode::Beta,
        };
        assert!((d.sigma_t(Schedule::CondOt, 0.25) - 0.375).abs() < 1e-7);
        assert_eq!(d.sigma_t(Schedule::CondOt, 1.0), 0.0);
        let c = Diffusion {
            sigma: 0.5,
            mode: SigmaMode::Const,
        };
        assert_eq!(c.sigma_t(Schedule::Cosine, 0.9), 0.5);
    }
}
