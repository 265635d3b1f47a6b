//! The training engine that the app and the command line drive: a configuration in,
//! steps run, statistics out.
//!
//! Every training row is a pure function of `(row, step, seed)` through the counter
//! RNG ([`batch_row`]), so a backend may split a batch any way it likes and the GPU
//! twin draws the same rows.

pub mod cpu;
pub mod gpu;
pub mod gpu_sampler;
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
    /// The GPU device was lost or reported an error: its results cannot be trusted.
    #[error("{0}")]
    Device(String),
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

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// A hardware GPU always; a software adapter only if it measures faster than the
    /// CPU engine; else the CPU.
    #[default]
    Auto,
    /// The GPU engine (an error if none can compute).
    Gpu,
    /// The CPU engine.
    Cpu,
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        })
    }
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(format!("unknown backend '{s}' (expected auto, gpu or cpu)")),
        }
    }
}

/// The backend in use and why it was picked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendInfo {
    /// "gpu" or "cpu".
    pub backend: &'static str,
    /// The adapter's description, or the CPU's thread count.
    pub adapter: String,
    /// Why this backend.
    pub reason: String,
}

/// A trainer on either backend, behind one interface.
pub enum Trainer {
    /// The CPU engine.
    Cpu(Box<cpu::CpuTrainer>),
    /// The GPU engine.
    Gpu(Box<gpu::GpuTrainer>),
}

impl Trainer {
    /// The parameter layout.
    pub fn layout(&self) -> &crate::nn::layout::Layout {
        match self {
            Trainer::Cpu(t) => t.layout(),
            Trainer::Gpu(t) => t.layout(),
        }
    }

    /// Runs `n` steps and returns their losses (natively the GPU path waits for them).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_steps(
        &mut self,
        data: &crate::core::data::DataSet,
        n: u32,
    ) -> Result<Vec<f32>, EngineError> {
        match self {
            Trainer::Cpu(t) => (0..n).map(|_| t.step(data)).collect(),
            Trainer::Gpu(t) => {
                let mut left = n;
                while left > 0 {
                    let k = left.min(crate::gpu::shaders::LOSS_RING);
                    t.submit_steps(k)?;
                    left -= k;
                }
                t.finish()
            }
        }
    }

    /// The parameters the samplers use (blocking read on the GPU path).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sampling_params(&self) -> Vec<f32> {
        match self {
            Trainer::Cpu(t) => t.ema_params().to_vec(),
            Trainer::Gpu(t) => t.ema_params_blocking(),
        }
    }

    /// The current parameters (blocking read on the GPU path).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn params(&self) -> Vec<f32> {
        match self {
            Trainer::Cpu(t) => t.params().to_vec(),
            Trainer::Gpu(t) => t.params_blocking(),
        }
    }
}

/// Steps per second of `trainer` over `steps` steps after `warmup` (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn measure(
    trainer: &mut Trainer,
    data: &crate::core::data::DataSet,
    warmup: u32,
    steps: u32,
) -> Result<f64, EngineError> {
    trainer.run_steps(data, warmup)?;
    let start = web_time::Instant::now();
    trainer.run_steps(data, steps)?;
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

/// Picks and builds the trainer for `choice` (native: makes its own device). With
/// `Auto`, a software adapter is raced against the CPU engine on this very config.
#[cfg(not(target_arch = "wasm32"))]
pub fn select_trainer(
    choice: BackendChoice,
    config: TrainConfig,
    data: &crate::core::data::DataSet,
) -> Result<(Trainer, BackendInfo), String> {
    use crate::gpu::context::GpuContext;
    let threads = worker_count(config.batch, 256);
    let cpu_info = |reason: String| BackendInfo {
        backend: "cpu",
        adapter: format!("CPU, {threads} threads"),
        reason,
    };
    let make_cpu = || {
        cpu::CpuTrainer::new(config)
            .map(|t| Trainer::Cpu(Box::new(t)))
            .map_err(|e| e.to_string())
    };
    if choice == BackendChoice::Cpu {
        return Ok((make_cpu()?, cpu_info("asked for with --backend cpu".into())));
    }
    let ctx = match GpuContext::headless(true) {
        Ok(ctx) => {
            ctx.watch();
            ctx
        }
        Err(e) if choice == BackendChoice::Gpu => return Err(format!("--backend gpu: {e}")),
        Err(e) => return Ok((make_cpu()?, cpu_info(format!("no usable GPU: {e}")))),
    };
    let adapter = ctx.describe();
    let make_gpu = |ctx: GpuContext| {
        gpu::GpuTrainer::new(ctx, config, data, None)
            .map(|t| Trainer::Gpu(Box::new(t)))
            .map_err(|e| e.to_string())
    };
    if choice == BackendChoice::Gpu {
        let reason = "asked for with --backend gpu".to_string();
        return Ok((
            make_gpu(ctx)?,
            BackendInfo {
                backend: "gpu",
                adapter,
                reason,
            },
        ));
    }
    if !ctx.is_software() {
        let reason = "hardware GPU adapter".to_string();
        return match make_gpu(ctx) {
            Ok(t) => Ok((
                t,
                BackendInfo {
                    backend: "gpu",
                    adapter,
                    reason,
                },
            )),
            Err(e) => Ok((
                make_cpu()?,
                cpu_info(format!("the GPU engine failed to start: {e}")),
            )),
        };
    }
    // A CPU-emulated adapter shares the cores with the CPU engine: race them.
    let mut g = match make_gpu(ctx.clone()) {
        Ok(g) => g,
        Err(e) => {
            return Ok((
                make_cpu()?,
                cpu_info(format!("the GPU engine failed to start: {e}")),
            ));
        }
    };
    let mut c = make_cpu()?;
    let gpu_sps = measure(&mut g, data, 2, 8).map_err(|e| e.to_string())?;
    let cpu_sps = measure(&mut c, data, 2, 8).map_err(|e| e.to_string())?;
    if gpu_sps > cpu_sps {
        let reason =
            format!("software adapter measured faster ({gpu_sps:.0} vs {cpu_sps:.0} CPU steps/s)");
        Ok((
            make_gpu(ctx)?,
            BackendInfo {
                backend: "gpu",
                adapter,
                reason,
            },
        ))
    } else {
        let reason = format!(
            "only a software adapter ({adapter}), slower here: {gpu_sps:.0} vs {cpu_sps:.0} CPU steps/s"
        );
        Ok((make_cpu()?, cpu_info(reason)))
    }
}
