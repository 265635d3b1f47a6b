//! Data sets: the toy distributions, user point sets read from CSV, and the common
//! representation the engine trains on, an equal-weight isotropic [`Mixture`].
//!
//! A point set is a mixture whose components have standard deviation 0, so training,
//! the exact marginals and the shaders handle toy sets, Gaussian mixtures and user data
//! alike. All toy sets live on a common scale, inside about `[-4, 4]^2`.

use std::f32::consts::{PI, TAU};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::path::Vec2;
use super::rng::{Rng, stream};

/// How many points a toy set that is not a Gaussian mixture is drawn into for training.
pub const TOY_POINTS: usize = 8192;
/// The fewest points a user set may have.
pub const MIN_POINTS: usize = 8;
/// The most points a user set may have (the exact marginals cost O(points) per query).
pub const MAX_POINTS: usize = 100_000;
/// A user set is centred and scaled so that its RMS radius per axis is this.
pub const USER_SPREAD: f32 = 1.5;
/// Standard deviation of the noise added to the curve-shaped toy sets.
pub const TOY_NOISE: f32 = 0.1;

/// The built-in toy distributions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toy {
    /// Two interleaved half circles, x in about [-3, 3], noise 0.1.
    #[default]
    #[serde(rename = "moons")]
    Moons,
    /// Eight Gaussians (std 0.25) on a circle of radius 3.
    #[serde(rename = "8gaussians")]
    EightGaussians,
    /// A 4 x 4 checkerboard of 2 x 2 squares on [-4, 4]^2, the 8 squares with even
    /// index sum filled uniformly.
    #[serde(rename = "checkerboard")]
    Checkerboard,
    /// Two concentric circles of radius 1.5 and 3, noise 0.1.
    #[serde(rename = "circles")]
    Circles,
    /// Two interleaved spiral arms out to radius 3.6, noise 0.1.
    #[serde(rename = "spirals")]
    Spirals,
    /// The 2-D swiss roll `tau (cos tau, sin tau) / 3.6`, `tau` in `[1.5 pi, 4.5 pi]`,
    /// noise 0.1.
    #[serde(rename = "swissroll")]
    SwissRoll,
    /// Five equal Gaussians (std 0.3) on a circle of radius 3 (the course's lab two).
    #[serde(rename = "gmm5")]
    Gmm5,
}

impl Toy {
    /// Every toy set, in menu order.
    pub const ALL: [Toy; 7] = [
        Toy::Moons,
        Toy::EightGaussians,
        Toy::Checkerboard,
        Toy::Circles,
        Toy::Spirals,
        Toy::SwissRoll,
        Toy::Gmm5,
    ];

    /// The name used on the command line and in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Toy::Moons => "moons",
            Toy::EightGaussians => "8gaussians",
            Toy::Checkerboard => "checkerboard",
            Toy::Circles => "circles",
            Toy::Spirals => "spirals",
            Toy::SwissRoll => "swissroll",
            Toy::Gmm5 => "gmm5",
        }
    }

    /// The set as a Gaussian mixture, when it is one.
    pub fn gaussian_mixture(self) -> Option<Mixture> {
        let ring = |k: usize, radius: f32, std: f32, phase: f32| {
            let comps = (0..k)
                .map(|i| {
                    let a = phase + TAU * i as f32 / k as f32;
                    Component {
                        mean: [radius * a.cos(), radius * a.sin()],
                        std,
                    }
                })
                .collect();
            Mixture { components: comps }
        };
        match self {
            Toy::EightGaussians => Some(ring(8, 3.0, 0.25, 0.0)),
            Toy::Gmm5 => Some(ring(5, 3.0, 0.3, PI / 2.0)),
            _ => None,
        }
    }

    /// One sample of the distribution.
    pub fn sample_one(self, rng: &mut Rng) -> Vec2 {
        let noisy = |p: Vec2, rng: &mut Rng| {
            [
                p[0] + TOY_NOISE * rng.normal(),
                p[1] + TOY_NOISE * rng.normal(),
            ]
        };
        match self {
            Toy::Moons => {
                let th = rng.uniform_in(0.0, PI);
                let p = if rng.uniform() < 0.5 {
                    [th.cos(), th.sin()]
                } else {
                    [1.0 - th.cos(), 0.5 - th.sin()]
                };
                noisy([2.0 * (p[0] - 0.5), 2.0 * (p[1] - 0.25)], rng)
            }
            Toy::Checkerboard => {
                let x = rng.uniform_in(-4.0, 4.0);
                let col = (((x + 4.0) / 2.0).floor() as u32).min(3);
                let row = col % 2 + 2 * rng.below(2);
                let y = -4.0 + 2.0 * row as f32 + rng.uniform_in(0.0, 2.0);
                [x, y]
            }
            Toy::Circles => {
                let r = if rng.uniform() < 0.5 { 1.5 } else { 3.0 };
                let a = rng.uniform_in(0.0, TAU);
                noisy([r * a.cos(), r * a.sin()], rng)
            }
            Toy::Spirals => {
                let u = rng.uniform().sqrt();
                let arm = if rng.uniform() < 0.5 { 0.0 } else { PI };
                let a = 3.5 * PI * u + arm;
                let r = 3.6 * u;
                noisy([r * a.cos(), r * a.sin()], rng)
            }
            Toy::SwissRoll => {
                let tau = 1.5 * PI * (1.0 + 2.0 * rng.uniform());
                noisy([tau * tau.cos() / 3.6, tau * tau.sin() / 3.6], rng)
            }
            Toy::EightGaussians | Toy::Gmm5 => {
                let m = self.gaussian_mixture().unwrap_or_default();
                m.sample_one(rng)
            }
        }
    }
}

impl fmt::Display for Toy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Toy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Toy::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Toy::ALL.iter().map(|t| t.name()).collect();
            format!(
                "unknown dataset '{s}' (expected one of {})",
                names.join(", ")
            )
        })
    }
}

/// One component of a mixture: `N(mean, std^2 I)`; `std = 0` is a point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Centre.
    pub mean: Vec2,
    /// Isotropic standard deviation, `>= 0`.
    pub std: f32,
}

/// An equal-weight mixture of isotropic Gaussians and points.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// The components, each with weight `1 / len`.
    pub components: Vec<Component>,
}

impl Mixture {
    /// A point set as a mixture of zero-width components.
    pub fn from_points(points: &[Vec2]) -> Self {
        Mixture {
            components: points
                .iter()
                .map(|&mean| Component { mean, std: 0.0 })
                .collect(),
        }
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    /// Whether the mixture has no component.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// One sample: a uniform component, then its Gaussian.
    pub fn sample_one(&self, rng: &mut Rng) -> Vec2 {
        let c = self.components[rng.below(self.len() as u32) as usize];
        [
            c.mean[0] + c.std * rng.normal(),
            c.mean[1] + c.std * rng.normal(),
        ]
    }
}

/// Where a data set came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A built-in toy distribution.
    Toy(Toy),
    /// Points read from a file or drawn by the user, in the data's own coordinates.
    User {
        /// A short name (the file name, or "drawn").
        name: String,
        /// The points as given.
        points: Vec<Vec2>,
    },
}

/// The affine map between the data's own coordinates and the model's:
/// `model = (data - center) * scale`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Subtracted first.
    pub center: Vec2,
    /// Then multiplied.
    pub scale: f32,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            center: [0.0, 0.0],
            scale: 1.0,
        }
    }
}

impl Normalizer {
    /// A point from data to model coordinates.
    pub fn model_from_data(&self, p: Vec2) -> Vec2 {
        [
            (p[0] - self.center[0]) * self.scale,
            (p[1] - self.center[1]) * self.scale,
        ]
    }

    /// A point from model to data coordinates.
    pub fn data_from_model(&self, p: Vec2) -> Vec2 {
        [
            p[0] / self.scale + self.center[0],
            p[1] / self.scale + self.center[1],
        ]
    }

    /// Centre on the mean and scale to an RMS spread of [`USER_SPREAD`] per axis.
    pub fn fit(points: &[Vec2]) -> Self {
        let n = points.len().max(1) as f64;
        let mut c = [0.0f64; 2];
        for p in points {
            c[0] += p[0] as f64 / n;
            c[1] += p[1] as f64 / n;
        }
        let var = points
            .iter()
            .map(|p| (p[0] as f64 - c[0]).powi(2) + (p[1] as f64 - c[1]).powi(2))
            .sum::<f64>()
            / (2.0 * n);
        let scale = if var > 1e-20 {
            USER_SPREAD as f64 / var.sqrt()
        } else {
            1.0
        };
        Normalizer {
            center: [c[0] as f32, c[1] as f32],
            scale: scale as f32,
        }
    }
}

/// A data set ready for training: the mixture the engine samples `z` from (model
/// coordinates) and the way back to the data's coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSet {
    /// Where it came from.
    pub origin: Origin,
    /// What training samples from, in model coordinates.
    pub mixture: Mixture,
    /// Model coordinates from the data's own.
    pub normalizer: Normalizer,
}

impl DataSet {
    /// A toy set. Gaussian mixtures are used as they are; the other sets are drawn into
    /// [`TOY_POINTS`] points with `seed`.
    pub fn toy(toy: Toy, seed: u32) -> Self {
        let mixture = toy.gaussian_mixture().unwrap_or_else(|| {
            let mut rng = Rng::new(seed, stream::DATA);
            let pts: Vec<Vec2> = (0..TOY_POINTS).map(|_| toy.sample_one(&mut rng)).collect();
            Mixture::from_points(&pts)
        });
        DataSet {
            origin: Origin::Toy(toy),
            mixture,
            normalizer: Normalizer::default(),
        }
    }

    /// A user point set (already validated), normalised to the common scale.
    pub fn user(name: &str, points: Vec<Vec2>) -> Result<Self, DataError> {
        validate_points(&points)?;
        let normalizer = Normalizer::fit(&points);
        let model: Vec<Vec2> = points
            .iter()
            .map(|&p| normalizer.model_from_data(p))
            .collect();
        Ok(DataSet {
            origin: Origin::User {
                name: name.to_string(),
                points,
            },
            mixture: Mixture::from_points(&model),
            normalizer,
        })
    }

    /// The set's name: the toy name, or the user set's name.
    pub fn name(&self) -> String {
        match &self.origin {
            Origin::Toy(t) => t.name().to_string(),
            Origin::User { name, .. } => name.clone(),
        }
    }

    /// `n` fresh samples in model coordinates: new draws of a toy distribution, or a
    /// bootstrap resample of a user set.
    pub fn fresh(&self, n: usize, seed: u32) -> Vec<Vec2> {
        let mut rng = Rng::new(seed, stream::METRIC);
        match &self.origin {
            Origin::Toy(t) => (0..n).map(|_| t.sample_one(&mut rng)).collect(),
            Origin::User { .. } => (0..n).map(|_| self.mixture.sample_one(&mut rng)).collect(),
        }
    }
}

/// What can be wrong with a user point set.
#[derive(Debug, Error, PartialEq)]
pub enum DataError {
    /// A line that is not two numbers.
    #[error("line {line}: expected two numbers 'x,y', found '{text}'")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// The offending text (shortened).
        text: String,
    },
    /// A value that is NaN or infinite.
    #[error("line {line}: value is not finite")]
    NotFinite {
        /// 1-based line number.
        line: usize,
    },
    /// Fewer than [`MIN_POINTS`].
    #[error("too few points: {found} (need at least {MIN_POINTS})")]
    TooFew {
        /// How many there were.
        found: usize,
    },
    /// More than [`MAX_POINTS`].
    #[error("too many points: {found} (at most {MAX_POINTS})")]
    TooMany {
        /// How many there were.
        found: usize,
    },
    /// All points on top of each other.
    #[error("all points are the same: the set has no spread to learn")]
    NoSpread,
}

fn validate_points(points: &[Vec2]) -> Result<(), DataError> {
    if points.len() < MIN_POINTS {
        return Err(DataError::TooFew {
            found: points.len(),
        });
    }
    if points.len() > MAX_POINTS {
        return Err(DataError::TooMany {
            found: points.len(),
        });
    }
    let first = points[0];
    if points.iter().all(|p| *p == first) {
        return Err(DataError::NoSpread);
    }
    Ok(())
}

/// Reads `x,y` lines (comma, semicolon, tab or space separated; a non-numeric first
/// line is a header; blank lines and `#` comments are skipped).
pub fn parse_csv(text: &str) -> Result<Vec<Vec2>, DataError> {
    let mut points = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split([',', ';', '\t', ' '])
            .filter(|f| !f.is_empty())
            .collect();
        let parsed: Option<Vec<f64>> = fields.iter().map(|f| f.parse::<f64>().ok()).collect();
        match parsed {
            Some(v) if v.len() == 2 => {
                if !v.iter().all(|x| x.is_finite() && x.abs() < 1e30) {
                    return Err(DataError::NotFinite { line: i + 1 });
                }
                points.push([v[0] as f32, v[1] as f32]);
            }
            None if points.is_empty() && is_header(&fields) => continue,
            _ => {
                return Err(DataError::Malformed {
                    line: i + 1,
                    text: line.chars().take(40).collect(),
                });
            }
        }
    }
    validate_points(&points)?;
    Ok(points)
}

fn is_header(fields: &[&str]) -> bool {
    fields.len() == 2
        && fields
            .iter()
            .all(|f| f.parse::<f64>().is_err() && f.chars().any(|c| c.is_alphabetic()))
}

/// Writes points as `x,y` lines with a header.
pub fn to_csv(points: &[Vec2]) -> String {
    let mut s = String::with_capacity(points.len() * 24 + 4);
    s.push_str("x,y\n");
    for p in points {
        s.push_str(&format!("{},{}\n", p[0], p[1]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toys_stay_on_the_common_scale() {
        for toy in Toy::ALL {
            let d = DataSet::toy(toy, 1);
            let pts = d.fresh(4000, 2);
            let max = pts
                .iter()
                .map(|p| p[0].abs().max(p[1].abs()))
                .fold(0.0f32, f32::max);
            assert!(max < 4.8 && max > 1.5, "{toy}: max |coord| {max}");
            assert_eq!(toy.name().parse::<Toy>(), Ok(toy));
        }
        assert!("moon".parse::<Toy>().is_err());
    }

    #[test]
    fn checkerboard_fills_only_even_squares() {
        let mut rng = Rng::new(3, 0);
        for _ in 0..2000 {
            let p = Toy::Checkerboard.sample_one(&mut rng);
            let i = ((p[0] + 4.0) / 2.0).floor() as i32;
            let j = ((p[1] + 4.0) / 2.0).floor() as i32;
            assert_eq!((i + j) % 2, 0, "{p:?}");
        }
    }

    #[test]
    fn csv_parses_headers_separators_and_reports_lines() {
        let ok = "x,y\n1,2\n3;4\n\n# note\n5 6\n7\t8\n1,1\n2,2\n3,3\n4,4\n";
        let pts = parse_csv(ok).expect("valid");
        assert_eq!(pts.len(), 8);
        assert_eq!(pts[1], [3.0, 4.0]);
        let bad = "1,2\n3,4\nfive,6\n";
        assert_eq!(
            parse_csv(bad),
            Err(DataError::Malformed {
                line: 3,
                text: "five,6".into()
            })
        );
        assert_eq!(
            parse_csv("1,2\nnan,3\n"),
            Err(DataError::NotFinite { line: 2 })
        );
        assert_eq!(parse_csv("1,2\n3,4\n"), Err(DataError::TooFew { found: 2 }));
        assert_eq!(
            parse_csv("1,2,3\n"),
            Err(DataError::Malformed {
                line: 1,
                text: "1,2,3".into()
            })
        );
        let same = "1,1\n".repeat(10);
        assert_eq!(parse_csv(&same), Err(DataError::NoSpread));
    }

    #[test]
    fn user_sets_are_normalised_and_map_back() {
        let pts: Vec<Vec2> = (0..50)
            .map(|i| [100.0 + i as f32, 200.0 - 2.0 * i as f32])
            .collect();
        let d = DataSet::user("line", pts.clone()).expect("valid");
        let m = &d.mixture.components;
        let mean: f32 = m.iter().map(|c| c.mean[0]).sum::<f32>() / m.len() as f32;
        assert!(mean.abs() < 1e-3);
        let back = d.normalizer.data_from_model(m[7].mean);
        assert!((back[0] - pts[7][0]).abs() < 1e-3 && (back[1] - pts[7][1]).abs() < 1e-3);
    }
}
