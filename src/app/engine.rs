//! The app's view of the training engine: the CPU trainer, or the GPU trainer on
//! eframe's own device, behind one non-blocking interface, and the rule that picks
//! between them.

use web_time::Instant;

use crate::core::data::DataSet;
use crate::engine::cpu::CpuTrainer;
use crate::engine::gpu::GpuTrainer;
use crate::engine::{BackendChoice, EngineError, TrainConfig};
use crate::gpu::context::{AsyncRead, GpuContext};
use crate::nn::layout::Layout;

/// How old a GPU parameter snapshot may get before the next one is asked for.
const SNAPSHOT_EVERY_S: f64 = 0.25;

enum Backend {
    Cpu(Box<CpuTrainer>),
    Gpu {
        trainer: Box<GpuTrainer>,
        params: Vec<f32>,
        ema: Vec<f32>,
        read_at: Option<Instant>,
        pending: Option<(AsyncRead, AsyncRead)>,
        per_frame: u32,
    },
}

/// Which engine runs, on what, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Badge {
    /// "cpu" or "gpu".
    pub backend: &'static str,
    /// The adapter, or the CPU's threads.
    pub adapter: String,
    /// Why this one.
    pub reason: String,
}

/// A trainer on either backend.
pub struct AppEngine {
    backend: Backend,
    /// What runs where, and why.
    pub badge: Badge,
}

fn cpu_badge(config: &TrainConfig, reason: String) -> Badge {
    let threads = crate::engine::worker_count(config.batch, 256);
    Badge {
        backend: "cpu",
        adapter: format!("CPU, {threads} threads"),
        reason,
    }
}

impl AppEngine {
    /// Picks the backend for `choice`: a compute-capable hardware GPU always (auto); a
    /// software adapter only if a short race on this configuration shows it faster
    /// (natively); the CPU engine otherwise.
    pub fn build(
        choice: BackendChoice,
        gpu: Option<&GpuContext>,
        config: TrainConfig,
        data: &DataSet,
    ) -> Result<Self, String> {
        let cpu = |reason: String| -> Result<Self, String> {
            let t = CpuTrainer::new(config).map_err(|e| e.to_string())?;
            Ok(AppEngine {
                backend: Backend::Cpu(Box::new(t)),
                badge: cpu_badge(&config, reason),
            })
        };
        let Some(ctx) = gpu else {
            let why = match choice {
                BackendChoice::Cpu => "chosen in the settings".to_string(),
                _ => "the window's graphics device cannot run compute shaders (WebGL2 or GL)"
                    .to_string(),
            };
            return cpu(why);
        };
        if choice == BackendChoice::Cpu {
            return cpu("chosen in the settings".into());
        }
        let make_gpu = |reason: String| gpu_engine(ctx, config, data, reason);
        if choice == BackendChoice::Gpu {
            return make_gpu("chosen in the settings".into())
                .or_else(|e| cpu(format!("the GPU engine failed: {e}")));
        }
        if !ctx.is_software() {
            return make_gpu("hardware GPU".into())
                .or_else(|e| cpu(format!("the GPU engine failed: {e}")));
        }
        race(ctx, config, data).unwrap_or_else(|| {
            cpu(format!(
                "{} is a software adapter, not measured against the CPU engine here",
                ctx.describe()
            ))
        })
    }

    /// Runs (CPU) or queues (GPU) up to `n` steps; returns the losses that are known
    /// now, in step order. Never waits on the GPU.
    pub fn train(&mut self, n: u32, data: &DataSet) -> Result<Vec<f32>, EngineError> {
        match &mut self.backend {
            Backend::Cpu(t) => {
                let mut out = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    out.push(t.step(data)?);
                }
                Ok(out)
            }
            Backend::Gpu {
                trainer, per_frame, ..
            } => {
                let in_flight = trainer.steps_submitted() - trainer.steps_seen();
                // Keep about two frames of work queued: more only adds latency.
                if in_flight <= 2 * *per_frame as u64 {
                    trainer.submit_steps(*per_frame)?;
                    if in_flight == 0 {
                        *per_frame = (*per_frame + *per_frame / 4 + 1).min(512);
                    }
                } else {
                    *per_frame = (*per_frame * 4 / 5).max(1);
                }
                trainer.poll()
            }
        }
    }

    /// The CPU engine carrying on from this one: its parameters and their average (on
    /// the GPU path, the last snapshot read back) at its step count.
    pub fn to_cpu(&self, reason: String) -> Result<AppEngine, String> {
        let config = *self.config();
        let mut t = CpuTrainer::new(config).map_err(|e| e.to_string())?;
        t.resume(self.params(), self.ema_params(), self.steps_done())
            .map_err(|e| e.to_string())?;
        Ok(AppEngine {
            backend: Backend::Cpu(Box::new(t)),
            badge: cpu_badge(&config, reason),
        })
    }

    /// Steps whose loss is known.
    pub fn steps_done(&self) -> u64 {
        match &self.backend {
            Backend::Cpu(t) => t.steps_done(),
            Backend::Gpu { trainer, .. } => trainer.steps_seen(),
        }
    }

    /// The GPU trainer, when this engine is one.
    pub fn gpu_trainer(&self) -> Option<&GpuTrainer> {
        match &self.backend {
            Backend::Gpu { trainer, .. } => Some(trainer),
            Backend::Cpu(_) => None,
        }
    }

    /// Whether this engine runs on the GPU.
    pub fn is_gpu(&self) -> bool {
        matches!(self.backend, Backend::Gpu { .. })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        match &self.backend {
            Backend::Cpu(t) => t.config(),
            Backend::Gpu { trainer, .. } => trainer.config(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        match &self.backend {
            Backend::Cpu(t) => t.layout(),
            Backend::Gpu { trainer, .. } => trainer.layout(),
        }
    }

    /// Keeps the host snapshot of the GPU parameters recent without waiting: takes a
    /// read that has arrived, and asks for the next one when the snapshot is old.
    pub fn refresh(&mut self) {
        let Backend::Gpu {
            trainer,
            params,
            ema,
            read_at,
            pending,
            ..
        } = &mut self.backend
        else {
            return;
        };
        // Natively, map callbacks run when the device is polled (never waiting).
        #[cfg(not(target_arch = "wasm32"))]
        let _ = trainer.context().device.poll(wgpu::PollType::Poll);
        if let Some((p, e)) = pending {
            if !(p.arrived() && e.arrived()) {
                return;
            }
            if let (Some(Ok(pb)), Some(Ok(eb))) = (p.take(), e.take()) {
                *params = bytemuck::pod_collect_to_vec(&pb);
                *ema = bytemuck::pod_collect_to_vec(&eb);
            }
            *pending = None;
            *read_at = Some(Instant::now());
        }
        if read_at.is_none_or(|t| t.elapsed().as_secs_f64() > SNAPSHOT_EVERY_S) {
            *pending = Some(trainer.read_params_async());
        }
    }

    /// The current parameters (a recent snapshot on the GPU path).
    pub fn params(&self) -> &[f32] {
        match &self.backend {
            Backend::Cpu(t) => t.params(),
            Backend::Gpu { params, .. } => params,
        }
    }

    /// The parameters the samplers use (a recent snapshot on the GPU path).
    pub fn ema_params(&self) -> &[f32] {
        match &self.backend {
            Backend::Cpu(t) => t.ema_params(),
            Backend::Gpu { ema, .. } => ema,
        }
    }

    /// Learning rate, batch and EMA decay, applied without a reset. The GPU engine's
    /// batch is fixed when it is built: a new batch size rebuilds it.
    pub fn set_live(&mut self, lr: f32, batch: usize, ema: f32) -> Result<bool, EngineError> {
        match &mut self.backend {
            Backend::Cpu(t) => t.set_live(lr, batch, ema).map(|_| true),
            Backend::Gpu { trainer, .. } => {
                if trainer.config().batch != batch {
                    return Ok(false);
                }
                trainer.set_live(lr, ema).map(|_| true)
            }
        }
    }
}

/// Races the GPU engine against the CPU engine for a few steps of `config` (native
/// only: it waits). Returns the GPU engine if it wins.
fn race(
    ctx: &GpuContext,
    config: TrainConfig,
    data: &DataSet,
) -> Option<Result<AppEngine, String>> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (ctx, config, data);
        None
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use crate::engine::{Trainer, measure};
        let g = GpuTrainer::new(ctx.clone(), config, data, None).ok()?;
        let mut g = Trainer::Gpu(Box::new(g));
        let mut c = Trainer::Cpu(Box::new(CpuTrainer::new(config).ok()?));
        let gpu_sps = measure(&mut g, data, 2, 6).ok()?;
        let cpu_sps = measure(&mut c, data, 2, 6).ok()?;
        if gpu_sps <= cpu_sps {
            return Some(
                CpuTrainer::new(config)
                    .map(|t| AppEngine {
                        backend: Backend::Cpu(Box::new(t)),
                        badge: cpu_badge(
                            &config,
                            format!(
                                "{} is a software adapter: {gpu_sps:.0} vs {cpu_sps:.0} CPU steps/s here",
                                ctx.info.name
                            ),
                        ),
                    })
                    .map_err(|e| e.to_string()),
            );
        }
        let reason =
            format!("software adapter measured faster: {gpu_sps:.0} vs {cpu_sps:.0} CPU steps/s");
        Some(gpu_engine(ctx, config, data, reason))
    }
}

/// The GPU engine on `ctx`, its snapshot starting at the initial parameters.
fn gpu_engine(
    ctx: &GpuContext,
    config: TrainConfig,
    data: &DataSet,
    reason: String,
) -> Result<AppEngine, String> {
    let t = GpuTrainer::new(ctx.clone(), config, data, None).map_err(|e| e.to_string())?;
    let init = t.layout().init_params(config.seed);
    Ok(AppEngine {
        backend: Backend::Gpu {
            params: init.clone(),
            ema: init,
            trainer: Box::new(t),
            read_at: None,
            pending: None,
            per_frame: 4,
        },
        badge: Badge {
            backend: "gpu",
            adapter: ctx.describe(),
            reason,
        },
    })
}
