//! The training engine that the app and the command line drive: a configuration in,
//! steps run, statistics out.
//!
//! Every training row is a pure function of `(row, step, seed)` through the counter
//! RNG ([`batch_row`]), so a backend may split a batch any way it likes and the GPU
//! twin draws the same rows.

pub mod cpu;
pub mod gpu;
pub mod sampler;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::data::Mixture;
use crate::core::path::{self, Loss, Vec2};
use crate::core::rng::{self, stream};
use crate::core::schedule::Schedule;
use crate::nn::cpu::AdamConfig;
use crate::nn::layout::MlpConfig;

/// The largest batch accepted.
pub const MAX_BATCH: usize = 65_536;

/// Everything that defines a training run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The objective (and what the network outputs).
    pub loss: Loss,
    /// The probability path.
    pub schedule: Schedule,
    /// The architecture.
    pub mlp: MlpConfig,
    /// Rows per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seeds the parameters and every batch.
    pub seed: u32,
    /// Decay of the exponential moving average of the parameters that the samplers
    /// use (0 turns it off: samplers then use the parameters themselves).
    pub ema: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            loss: Loss::Cfm,
            schedule: Schedule::CondOt,
            mlp: MlpConfig::default(),
            batch: 1024,
            lr: 1e-3,
            seed: 0,
            ema: 0.99,
        }
    }
}

impl TrainConfig {
    /// Checks the numbers a user can get wrong.
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(EngineError::Invalid(format!(
                "batch must be in 1..={MAX_BATCH}, got {}",
                self.batch
            )));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return Err(EngineError::Invalid(format!(
                "learning rate must be in (0, 1], got {}",
                self.lr
            )));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(EngineError::Invalid(format!(
                "EMA decay must be in [0, 1), got {}",
                self.ema
            )));
        }
        crate::nn::layout::Layout::new(self.mlp).map_err(EngineError::Invalid)?;
        Ok(())
    }

    /// Adam's settings for this run.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            ..AdamConfig::default()
        }
    }
}

/// What can go wrong while training.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
    /// The loss or a gradient became NaN or infinite; the update was not applied.
    #[error(
        "training diverged at step {step} (loss {loss}): parameters kept from the step before; lower the learning rate or reset"
    )]
    Diverged {
        /// The step that produced it.
        step: u64,
        /// The loss seen.
        loss: f32,
    },
}

/// One training row: the time, the data point, the noise, the network input position
/// `x_t` and the regression target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// `t` in `[0, t_max]`.
    pub t: f32,
    /// The data point `z` drawn from the mixture.
    pub z: Vec2,
    /// `eps ~ N(0, I)`.
    pub eps: Vec2,
    /// `x_t = alpha z + beta eps`.
    pub x: Vec2,
    /// The loss's target.
    pub target: Vec2,
}

/// Row `i` of training step `step`: `t = t_max u`, a uniform component of the mixture
/// (plus its Gaussian noise), and `eps` by Box-Muller. Same formula as
/// `shaders/batch.wgsl`.
#[inline]
pub fn batch_row(
    loss: Loss,
    schedule: Schedule,
    mixture: &Mixture,
    seed: u32,
    step: u32,
    i: u32,
) -> Row {
    let w = rng::draw(i, step, seed, stream::BATCH);
    let t = path::t_max(loss, schedule) * rng::uniform_open(w[0]);
    let comp = mixture.components[rng::index_below(w[1], mixture.len() as u32) as usize];
    let eps = rng::box_muller(w[2], w[3]);
    let z = if comp.std > 0.0 {
        let g = rng::draw(i, step, seed, stream::BATCH_GMM);
        let n = rng::box_muller(g[0], g[1]);
        [
            comp.mean[0] + comp.std * n[0],
            comp.mean[1] + comp.std * n[1],
        ]
    } else {
        comp.mean
    };
    let c = schedule.coeffs(t);
    Row {
        t,
        z,
        eps,
        x: path::sample_xt(c, z, eps),
        target: path::target(loss, c, z, eps),
    }
}

/// How many worker threads the CPU engine may use for `rows` rows: one per core,
/// at most one per `min_rows` rows. Always 1 on wasm32.
pub fn worker_count(rows: usize, min_rows: usize) -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (rows, min_rows);
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.min(rows / min_rows.max(1)).clamp(1, 16)
    }
}

/// Runs `f(i, item)` for every item, on scoped threads when there are several (the
/// calling thread takes the first). Threads exit when done: nothing spins while idle.
pub fn run_parallel<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    if items.len() > 1 {
        std::thread::scope(|s| {
            let (first, rest) = items.split_at_mut(1);
            for (i, item) in rest.iter_mut().enumerate() {
                let f = &f;
                s.spawn(move || f(i + 1, item));
            }
            f(0, &mut first[0]);
        });
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        f(i, item);
    }
}

/// Splits `n` rows into `parts` contiguous ranges of nearly equal size.
pub fn split_rows(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|p| (p * n / parts)..((p + 1) * n / parts))
        .collect()
}
