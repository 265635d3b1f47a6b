//! Every user-facing setting, in one place: the UI edits it, eframe persists it, and
//! the engine is rebuilt or updated from it.

use serde::{Deserialize, Serialize};

use crate::core::data::Toy;
use crate::core::path::{Loss, Vec2};
use crate::core::schedule::{Diffusion, Schedule, SigmaMode};
use crate::engine::sampler::{SamplerConfig, SamplerKind};
use crate::engine::{BackendChoice, TrainConfig};
use crate::nn::layout::{Activation, MlpConfig, TimeFeatures};

/// Which data the model learns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataChoice {
    /// A built-in toy set.
    Toy(Toy),
    /// Points the user sprayed with the brush (or imported), in model coordinates.
    Drawn,
}

impl DataChoice {
    /// The name in menus, links and file names: the toy set's, or "drawn".
    pub fn name(&self) -> &'static str {
        match self {
            DataChoice::Toy(t) => t.name(),
            DataChoice::Drawn => "drawn",
        }
    }
}

/// Which learned quantity the arrows show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArrowKind {
    /// The vector field `u_t`.
    #[default]
    Field,
    /// The score `s_t`.
    Score,
}

/// The canvas layers, each toggled on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layers {
    /// The data points.
    pub data: bool,
    /// The exact density of `p_t` as a heatmap.
    pub density: bool,
    /// Arrows of the learned field or score.
    pub learned_arrows: bool,
    /// Which one.
    pub arrow_kind: ArrowKind,
    /// Arrows of the exact marginal field or score.
    pub exact_arrows: bool,
    /// The particles at the current t.
    pub particles: bool,
    /// Paths of a few particles.
    pub trajectories: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            data: true,
            density: true,
            learned_arrows: true,
            arrow_kind: ArrowKind::Field,
            exact_arrows: false,
            particles: true,
            trajectories: true,
        }
    }
}

/// All settings. Unknown or missing fields fall back to the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The data.
    pub data: DataChoice,
    /// The objective.
    pub loss: Loss,
    /// The probability path.
    pub schedule: Schedule,
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// How time enters the network.
    pub time: TimeFeatures,
    /// Adam's learning rate (live).
    pub lr: f32,
    /// Batch size (live).
    pub batch: usize,
    /// Parameter average decay (live).
    pub ema: f32,
    /// Seed of the model and its batches.
    pub seed: u32,
    /// Sampling scheme.
    pub sampler: SamplerKind,
    /// Diffusion scale for the SDE.
    pub sigma: f32,
    /// Constant or proportional to beta_t.
    pub sigma_mode: SigmaMode,
    /// Integration steps from 0 to 1.
    pub sample_steps: u32,
    /// Number of particles.
    pub particles: usize,
    /// The time shown.
    pub t: f32,
    /// What the canvas draws.
    pub layers: Layers,
    /// Training steps per frame; `None` adapts to the frame budget.
    pub steps_per_frame: Option<u32>,
    /// Log scale for the loss plot.
    pub log_scale: bool,
    /// Which engine trains.
    pub backend: BackendChoice,
    /// The user's own points (model coordinates).
    pub drawn: Vec<Vec2>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data: DataChoice::Toy(Toy::Moons),
            loss: Loss::Cfm,
            schedule: Schedule::CondOt,
            width: 128,
            depth: 3,
            activation: Activation::Silu,
            time: TimeFeatures::Sinusoidal,
            lr: 1e-3,
            batch: 1024,
            ema: 0.99,
            seed: 0,
            sampler: SamplerKind::Ode,
            sigma: 0.5,
            sigma_mode: SigmaMode::Beta,
            sample_steps: 100,
            particles: 4000,
            t: 1.0,
            layers: Layers::default(),
            steps_per_frame: None,
            log_scale: true,
            backend: BackendChoice::Auto,
            drawn: Vec::new(),
        }
    }
}

/// The settings that define a model: when any changes, training starts over.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelKey {
    data: DataChoice,
    drawn_len: usize,
    loss: Loss,
    schedule: Schedule,
    mlp: MlpConfig,
    seed: u32,
    backend: BackendChoice,
}

impl Settings {
    /// What invalidates the model.
    pub fn model_key(&self) -> ModelKey {
        ModelKey {
            data: self.data.clone(),
            drawn_len: if self.data == DataChoice::Drawn {
                self.drawn.len()
            } else {
                0
            },
            loss: self.loss,
            schedule: self.schedule,
            mlp: self.mlp(),
            seed: self.seed,
            backend: self.backend,
        }
    }

    /// The architecture.
    pub fn mlp(&self) -> MlpConfig {
        MlpConfig {
            width: self.width,
            depth: self.depth,
            activation: self.activation,
            time: self.time,
        }
    }

    /// The engine's configuration.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            loss: self.loss,
            schedule: self.schedule,
            mlp: self.mlp(),
            batch: self.batch,
            lr: self.lr,
            seed: self.seed,
            ema: self.ema,
        }
    }

    /// The sampler's configuration.
    pub fn sampler_config(&self) -> SamplerConfig {
        SamplerConfig {
            kind: self.sampler,
            steps: self.sample_steps.max(1),
            diffusion: Diffusion {
                sigma: self.sigma,
                mode: self.sigma_mode,
            },
            seed: self.seed,
        }
    }

    /// Brings every number into its valid range (after loading a stored state).
    pub fn sanitize(&mut self) {
        self.width = self.width.clamp(8, 512);
        self.depth = self.depth.clamp(1, 6);
        if !(self.lr.is_finite() && self.lr > 0.0) {
            self.lr = 1e-3;
        }
        self.lr = self.lr.clamp(1e-5, 0.1);
        self.batch = self.batch.clamp(16, 8192);
        if !self.ema.is_finite() {
            self.ema = 0.99;
        }
        self.ema = self.ema.clamp(0.0, 0.999);
        if !self.sigma.is_finite() {
            self.sigma = 0.5;
        }
        self.sigma = self.sigma.clamp(0.0, 3.0);
        self.sample_steps = self.sample_steps.clamp(5, 1000);
        self.particles = self.particles.clamp(100, 200_000);
        if !self.t.is_finite() {
            self.t = 1.0;
        }
        self.t = self.t.clamp(0.0, 1.0);
        if let Schedule::Poly(k) = self.schedule {
            let (lo, hi) = Schedule::POLY_RANGE;
            if !(lo..=hi).contains(&k) {
                self.schedule = Schedule::Poly(k.clamp(lo, hi));
            }
        }
        self.drawn.retain(|p| p[0].is_finite() && p[1].is_finite());
        if self.data == DataChoice::Drawn && self.drawn.len() < crate::core::data::MIN_POINTS {
            self.data = DataChoice::Toy(Toy::Moons);
        }
    }
}

/// The presets of the menu: a name and the settings it sets.
pub fn presets() -> Vec<(&'static str, Settings)> {
    let base = Settings::default();
    vec![
        ("Lecture 3: flow matching, CondOT (moons)", base.clone()),
        (
            "Course lab two: GMM, sqrt-beta path",
            Settings {
                data: DataChoice::Toy(Toy::Gmm5),
                schedule: Schedule::SqrtBeta,
                ..base.clone()
            },
        ),
        (
            "Score matching + SDE",
            Settings {
                data: DataChoice::Toy(Toy::EightGaussians),
                loss: Loss::DsmEps,
                sampler: SamplerKind::Sde,
                sigma: 1.0,
                sigma_mode: SigmaMode::Beta,
                layers: Layers {
                    arrow_kind: ArrowKind::Score,
                    ..Layers::default()
                },
                ..base.clone()
            },
        ),
        (
            "Draw your own",
            Settings {
                data: DataChoice::Drawn,
                drawn: heart(),
                ..base
            },
        ),
    ]
}

/// A starting drawing for the "Draw your own" preset: a heart of 400 points.
fn heart() -> Vec<Vec2> {
    (0..400)
        .map(|i| {
            let a = std::f32::consts::TAU * i as f32 / 400.0;
            let x = 16.0 * a.sin().powi(3);
            let y =
                13.0 * a.cos() - 5.0 * (2.0 * a).cos() - 2.0 * (3.0 * a).cos() - (4.0 * a).cos();
            [x * 0.18, y * 0.18 + 0.3]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_garbage_falls_back() {
        let s = Settings::default();
        let text = serde_json::to_string(&s).expect("serialises");
        let back: Settings = serde_json::from_str(&text).expect("parses");
        assert_eq!(s, back);
        let partial: Settings = serde_json::from_str(r#"{"width": 64}"#).expect("parses");
        assert_eq!(partial.width, 64);
        assert_eq!(partial.depth, 3);
        let mut wild = Settings {
            lr: f32::NAN,
            width: 100_000,
            t: 7.0,
            data: DataChoice::Drawn,
            ..Settings::default()
        };
        wild.sanitize();
        assert_eq!(wild.lr, 1e-3);
        assert_eq!(wild.width, 512);
        assert_eq!(wild.t, 1.0);
        assert_eq!(
            wild.data,
            DataChoice::Toy(Toy::Moons),
            "too few drawn points"
        );
    }

    #[test]
    fn the_model_key_separates_live_settings() {
        let a = Settings::default();
        let b = Settings {
            lr: 0.01,
            t: 0.3,
            ..a.clone()
        };
        assert_eq!(a.model_key(), b.model_key());
        let c = Settings {
            width: 64,
            ..a.clone()
        };
        assert_ne!(a.model_key(), c.model_key());
        assert!(
            presets()
                .iter()
                .all(|(_, s)| s.train_config().validate().is_ok())
        );
    }
}
