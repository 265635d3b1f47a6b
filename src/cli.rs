//! The headless command line: `train` and `bench` print JSON summaries for scripts,
//! tests and benchmarks. Bad input gives one line on stderr and exit code 2.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::{Value, json};
use web_time::Instant;

use crate::core::data::{self, DataSet, Toy};
use crate::core::metrics;
use crate::core::path::Loss;
use crate::core::schedule::{Diffusion, Schedule, SigmaMode};
use crate::engine::cpu::{self, CpuTrainer};
use crate::engine::gpu::GpuTrainer;
use crate::engine::gpu_sampler::GpuSampler;
use crate::engine::sampler::{self, Grid, Model, Particles, SamplerConfig, SamplerKind};
use crate::engine::{BackendChoice, TrainConfig, Trainer, measure, select_trainer, worker_count};
use crate::gpu::context::GpuContext;
use crate::nn::layout::{Activation, MlpConfig, TimeFeatures};

/// How a command ended badly.
#[derive(Debug)]
pub enum CliError {
    /// The user's input: exit code 2.
    Usage(String),
    /// The run itself failed (divergence, a file that cannot be written): exit code 1.
    Failed(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    /// The one line for stderr.
    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => m,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
flow-playground: watch a generative model learn (flow matching, score matching)

USAGE:
  flow-playground                   open the interactive window
  flow-playground train [OPTIONS]   train, sample, score; --json for a one-line summary
  flow-playground bench [--json]    training throughput of both backends, and their ratio
  flow-playground help              this text

TRAIN OPTIONS (defaults in brackets):
  --dataset NAME        moons, 8gaussians, checkerboard, circles, spirals, swissroll, gmm5 [moons]
  --data-file FILE.csv  train on your own points (x,y per line, header optional)
  --loss L              cfm, dsm, dsm-eps [cfm]
  --schedule S          condot, cosine, sqrt-beta, poly:K [condot]
  --steps N             training steps [3000]
  --batch N             rows per step [1024]
  --width N             hidden width [128]
  --depth N             hidden layers [3]
  --activation A        silu, relu, tanh [silu]
  --time-features F     sinusoidal, raw [sinusoidal]
  --lr X                Adam learning rate [0.001]
  --seed N              seeds the model, the batches and the sampler [0]
  --ema D               decay of the parameter average the sampler uses, 0 = off [0.99]
  --backend B           auto, gpu, cpu [auto: a hardware GPU; a software one only if faster]
  --sampler K           ode (Euler), heun, sde (Euler-Maruyama) [ode]
  --sigma X             diffusion scale for sde, >= 0 [1]
  --sigma-mode M        const, beta [const]
  --sample-steps N      integration steps [100]
  --samples N           samples drawn and scored [4096]
  --samples-out FILE    write the samples as CSV in the data's own coordinates
  --json                print one JSON summary as the last line
";

/// Parsed `--flag value` pairs and bare `--switch`es.
struct Flags {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Flags {
    fn parse(args: &[String], with_value: &[&str], switches: &[&str]) -> Result<Self, CliError> {
        let mut values = BTreeMap::new();
        let mut found = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(CliError::Usage(format!(
                    "unexpected argument '{arg}' (see 'flow-playground help')"
                )));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if switches.contains(&name) {
                found.push(name.to_string());
            } else if with_value.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| CliError::Usage(format!("--{name} needs a value")))?,
                };
                values.insert(name.to_string(), v);
            } else {
                return Err(CliError::Usage(format!(
                    "unknown flag '--{name}' (see 'flow-playground help')"
                )));
            }
        }
        Ok(Flags {
            values,
            switches: found,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, CliError>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| CliError::Usage(format!("--{name} '{v}': {e}"))),
        }
    }

    fn positive(&self, name: &str, default: usize) -> Result<usize, CliError> {
        let v: i64 = self.get(name, default as i64)?;
        if v <= 0 {
            return Err(CliError::Usage(format!(
                "--{name} must be a positive integer, got {v}"
            )));
        }
        Ok(v as usize)
    }
}

/// The settings of `train`.
#[derive(Clone, Debug)]
pub struct TrainArgs {
    /// The engine's configuration.
    pub config: TrainConfig,
    /// Training steps.
    pub steps: usize,
    /// The data.
    pub data: DataSet,
    /// The sampler.
    pub sampler: SamplerConfig,
    /// Samples to draw and score.
    pub samples: usize,
    /// Where to write them.
    pub samples_out: Option<String>,
    /// Print the JSON summary.
    pub json: bool,
    /// Which backend to train on.
    pub backend: BackendChoice,
}

const TRAIN_VALUES: &[&str] = &[
    "dataset",
    "data-file",
    "loss",
    "schedule",
    "steps",
    "batch",
    "width",
    "depth",
    "activation",
    "time-features",
    "lr",
    "seed",
    "ema",
    "backend",
    "sampler",
    "sigma",
    "sigma-mode",
    "sample-steps",
    "samples",
    "samples-out",
];

/// Parses the arguments after `train`.
pub fn parse_train(args: &[String]) -> Result<TrainArgs, CliError> {
    let f = Flags::parse(args, TRAIN_VALUES, &["json"])?;
    let seed: u32 = f.get("seed", 0)?;
    if f.values.contains_key("dataset") && f.values.contains_key("data-file") {
        return Err(CliError::Usage(
            "give either --dataset or --data-file, not both".into(),
        ));
    }
    let data = match f.values.get("data-file") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--data-file '{path}': {e}")))?;
            let points =
                data::parse_csv(&text).map_err(|e| CliError::Usage(format!("{path}: {e}")))?;
            let name = std::path::Path::new(path)
                .file_name()
                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
            DataSet::user(&name, points).map_err(|e| CliError::Usage(format!("{path}: {e}")))?
        }
        None => DataSet::toy(f.get("dataset", Toy::Moons)?, seed),
    };
    let lr: f32 = f.get("lr", 1e-3)?;
    let sigma: f32 = f.get("sigma", 1.0)?;
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(CliError::Usage(format!(
            "--sigma must be a finite number >= 0, got {sigma}"
        )));
    }
    let config = TrainConfig {
        loss: f.get("loss", Loss::Cfm)?,
        schedule: f.get("schedule", Schedule::CondOt)?,
        mlp: MlpConfig {
            width: f.positive("width", 128)?,
            depth: f.positive("depth", 3)?,
            activation: f.get("activation", Activation::Silu)?,
            time: f.get("time-features", TimeFeatures::Sinusoidal)?,
        },
        batch: f.positive("batch", 1024)?,
        lr,
        seed,
        ema: f.get("ema", 0.99)?,
    };
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let sample_steps = f.positive("sample-steps", 100)?;
    if sample_steps > 100_000 {
        return Err(CliError::Usage(
            "--sample-steps must be at most 100000".into(),
        ));
    }
    let samples = f.positive("samples", 4096)?;
    if samples > 10_000_000 {
        return Err(CliError::Usage("--samples must be at most 10000000".into()));
    }
    Ok(TrainArgs {
        config,
        steps: f.positive("steps", 3000)?,
        data,
        sampler: SamplerConfig {
            kind: f.get("sampler", SamplerKind::Ode)?,
            steps: sample_steps as u32,
            diffusion: Diffusion {
                sigma,
                mode: f.get("sigma-mode", SigmaMode::Const)?,
            },
            seed,
        },
        samples,
        samples_out: f.values.get("samples-out").cloned(),
        json: f.has("json"),
        backend: f.get("backend", BackendChoice::Auto)?,
    })
}

/// Trains, samples and scores; returns the JSON summary.
pub fn run_train(a: &TrainArgs) -> Result<Value, CliError> {
    let (mut trainer, info) =
        select_trainer(a.backend, a.config, &a.data).map_err(CliError::Failed)?;
    if !a.json {
        eprintln!(
            "backend: {} on {} ({})",
            info.backend, info.adapter, info.reason
        );
    }
    let mut losses = Vec::with_capacity(a.steps);
    let start = Instant::now();
    let report_every = (a.steps / 10).max(1);
    while losses.len() < a.steps {
        let n = report_every.min(a.steps - losses.len()) as u32;
        let got = trainer
            .run_steps(&a.data, n)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        losses.extend(got);
        if !a.json {
            let el = start.elapsed().as_secs_f64();
            eprintln!(
                "step {:>6}/{}  loss {:.4}  {:.0} steps/s",
                losses.len(),
                a.steps,
                mean_tail(&losses, 100),
                losses.len() as f64 / el
            );
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let params = trainer.params();
    let pair = cpu::loss_pair(
        trainer.layout(),
        &params,
        &a.config,
        &a.data,
        u32::MAX,
        1024,
    );
    let t0 = Instant::now();
    let samples = match &trainer {
        // On the GPU backend the samples are drawn on the device too.
        Trainer::Gpu(g) => {
            let mut s = GpuSampler::new(
                g.context().clone(),
                g.layout().clone(),
                a.config.loss,
                a.config.schedule,
                &a.data,
                a.samples as u32,
                0,
                a.sampler,
                Grid::square(4.5, 8),
            )
            .map_err(|e| CliError::Failed(e.to_string()))?;
            s.copy_params_from(g);
            let samples = s.sample_blocking();
            // A device lost while sampling reads back nothing trustworthy.
            if let Some(p) = g.context().problem() {
                return Err(CliError::Failed(p));
            }
            samples
        }
        Trainer::Cpu(_) => {
            let sampling = trainer.sampling_params();
            let model = Model {
                layout: trainer.layout(),
                params: &sampling,
                loss: a.config.loss,
                schedule: a.config.schedule,
            };
            sampler::sample(model, a.sampler, a.samples)
        }
    };
    let sample_seconds = t0.elapsed().as_secs_f64();
    if samples
        .iter()
        .any(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        return Err(CliError::Failed(
            "sampling produced non-finite points: the model diverged or sigma is too large".into(),
        ));
    }
    let q = metrics::evaluate(&a.data, &samples, a.config.seed.wrapping_add(1000));
    if let Some(path) = &a.samples_out {
        let pts: Vec<_> = samples
            .iter()
            .map(|&p| a.data.normalizer.data_from_model(p))
            .collect();
        std::fs::write(path, data::to_csv(&pts))
            .map_err(|e| CliError::Failed(format!("--samples-out '{path}': {e}")))?;
    }
    let c = &a.config;
    Ok(json!({
        "dataset": a.data.name(),
        "loss": c.loss.to_string(),
        "schedule": c.schedule.to_string(),
        "steps": a.steps,
        "batch": c.batch,
        "width": c.mlp.width,
        "depth": c.mlp.depth,
        "activation": c.mlp.activation.to_string(),
        "time_features": c.mlp.time.to_string(),
        "lr": c.lr,
        "seed": c.seed,
        "ema": c.ema,
        "backend": info.backend,
        "adapter": info.adapter,
        "backend_reason": info.reason,
        "train_seconds": train_seconds,
        "steps_per_second": a.steps as f64 / train_seconds,
        "final_loss": mean_tail(&losses, 100),
        "probe_l_cfm": pair.conditional,
        "probe_l_fm": pair.marginal,
        "sampler": a.sampler.kind.to_string(),
        "sigma": a.sampler.diffusion.sigma,
        "sigma_mode": a.sampler.diffusion.mode.to_string(),
        "sample_steps": a.sampler.steps,
        "samples": a.samples,
        "sample_seconds": sample_seconds,
        "sliced_w2": q.sliced_w2,
        "sliced_w2_floor": q.sliced_w2_floor,
        "sliced_w2_ceiling": q.sliced_w2_ceiling,
        "energy": q.energy,
        "energy_floor": q.energy_floor,
        "energy_ceiling": q.energy_ceiling,
    }))
}

fn mean_tail(xs: &[f32], n: usize) -> f64 {
    let tail = &xs[xs.len().saturating_sub(n)..];
    tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len().max(1) as f64
}

/// Steps timed so that each measurement lasts about `seconds`.
fn timed_steps(trainer: &mut Trainer, data: &DataSet, seconds: f64) -> Result<f64, String> {
    let probe = measure(trainer, data, 2, 3).map_err(|e| e.to_string())?;
    let steps = ((probe * seconds) as u32).clamp(3, 2000);
    measure(trainer, data, 0, steps).map_err(|e| e.to_string())
}

/// Training throughput of both backends at 3 x 128 and 4 x 256, batch 1024 and 4096,
/// in one run, with the GPU/CPU ratio; and the WGSL matrix product alone.
pub fn bench(seconds: f64, verbose: bool) -> Value {
    let data = DataSet::toy(Toy::Moons, 0);
    let ctx = GpuContext::headless(true);
    let adapter = match &ctx {
        Ok(c) => c.describe(),
        Err(e) => format!("none ({e})"),
    };
    let mut rows = Vec::new();
    let mut gemm = Vec::new();
    for (width, depth) in [(128, 3), (256, 4)] {
        for batch in [1024, 4096] {
            let config = TrainConfig {
                mlp: MlpConfig {
                    width,
                    depth,
                    ..MlpConfig::default()
                },
                batch,
                ..TrainConfig::default()
            };
            let flops = crate::nn::layout::Layout::new(config.mlp)
                .map(|l| l.train_flops(batch))
                .unwrap_or(0.0);
            let cpu_sps = CpuTrainer::new(config)
                .map_err(|e| e.to_string())
                .and_then(|t| timed_steps(&mut Trainer::Cpu(Box::new(t)), &data, seconds));
            let gpu = match &ctx {
                Ok(ctx) => {
                    GpuTrainer::new(ctx.clone(), config, &data, None).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            let mut gpu_row = json!(null);
            let mut gpu_sps = None;
            if let Ok(g) = gpu {
                if (width, depth, batch) == (128, 3, 1024) {
                    // The hidden 128 x 128 product of the forward pass, alone.
                    for (i, (name, shape)) in g.plan_summary().iter().enumerate() {
                        if let Some([m, n, k]) = shape
                            && *m == 1024
                            && *n == 128
                            && *k == 129
                            && let Some((secs, fl)) = g.time_dispatch(i, 50)
                        {
                            gemm.push(json!({
                                "kernel": name,
                                "shape": format!("({m} x {k}) x ({k} x {n})"),
                                "gflops": fl / secs / 1e9,
                            }));
                            break;
                        }
                    }
                }
                let mut t = Trainer::Gpu(Box::new(g));
                if let Ok(sps) = timed_steps(&mut t, &data, seconds) {
                    gpu_sps = Some(sps);
                    gpu_row = json!({"steps_per_second": sps, "gflops": flops * sps / 1e9});
                }
            }
            let cpu_sps = cpu_sps.unwrap_or(f64::NAN);
            let row = json!({
                "width": width,
                "depth": depth,
                "batch": batch,
                "cpu": {"steps_per_second": cpu_sps, "gflops": flops * cpu_sps / 1e9,
                        "threads": worker_count(batch, 256)},
                "gpu": gpu_row,
                "gpu_over_cpu": gpu_sps.map(|g| g / cpu_sps),
            });
            if verbose {
                eprintln!("{row}");
            }
            rows.push(row);
        }
    }
    let particles = bench_particles(ctx.as_ref().ok(), &data, seconds);
    if verbose {
        eprintln!("{particles}");
    }
    json!({ "adapter": adapter, "train": rows, "wgsl_gemm": gemm, "particles": particles })
}

/// Particle-steps per second for 100k particles of the default network (ODE, 100
/// steps), timed over the first steps of the run, on both backends.
fn bench_particles(ctx: Option<&GpuContext>, data: &DataSet, seconds: f64) -> Value {
    const N: usize = 100_000;
    let config = TrainConfig::default();
    let Ok(layout) = crate::nn::layout::Layout::new(config.mlp) else {
        return json!(null);
    };
    let params = layout.init_params(0);
    let model = Model {
        layout: &layout,
        params: &params,
        loss: config.loss,
        schedule: config.schedule,
    };
    let cfg = SamplerConfig::default();
    let mut p = Particles::new(N, cfg);
    let start = Instant::now();
    let mut steps = 0u32;
    while steps < 2 || (start.elapsed().as_secs_f64() < seconds && steps < cfg.steps) {
        p.step(model);
        steps += 1;
    }
    let cpu = (N as f64 * steps as f64) / start.elapsed().as_secs_f64();
    let gpu = ctx.and_then(|ctx| {
        let mut s = GpuSampler::new(
            ctx.clone(),
            layout.clone(),
            config.loss,
            config.schedule,
            data,
            N as u32,
            0,
            cfg,
            Grid::square(4.5, 8),
        )
        .ok()?;
        s.set_params(&params);
        s.advance(1);
        let _ = s.positions_blocking();
        let start = Instant::now();
        let mut steps = 0u32;
        while steps < 2 || (start.elapsed().as_secs_f64() < seconds && s.k() < cfg.steps) {
            s.advance(1);
            let _ = ctx.device.poll(wgpu::PollType::wait_indefinitely());
            steps += 1;
        }
        Some((N as f64 * steps as f64) / start.elapsed().as_secs_f64())
    });
    json!({
        "particles": N,
        "steps": cfg.steps,
        "cpu_particle_steps_per_second": cpu,
        "gpu_particle_steps_per_second": gpu,
        "gpu_over_cpu": gpu.map(|g| g / cpu),
    })
}

/// Runs the command line; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let result = match args.first().map(String::as_str) {
        Some("train") => parse_train(&args[1..]).and_then(|a| {
            let v = run_train(&a)?;
            if a.json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            Ok(())
        }),
        Some("bench") => Flags::parse(&args[1..], &["seconds"], &["json"]).and_then(|f| {
            let secs: f64 = f.get("seconds", 1.5)?;
            if !(secs.is_finite() && secs > 0.0) {
                return Err(CliError::Usage("--seconds must be positive".into()));
            }
            println!("{}", bench(secs, !f.has("json")));
            Ok(())
        }),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(CliError::Usage(format!(
            "unknown command '{other}' (expected train, bench or help)"
        ))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {}", e.message());
            e.exit_code()
        }
    }
}
