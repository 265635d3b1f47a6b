//! Sampling: the GPU integration, fields and histogram against the CPU reference; and
//! what the lecture promises of the marginals (they do not depend on sigma; the score
//! derived from a vector field is the marginal score).

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::marginal::marginal;
use flow_playground::core::metrics;
use flow_playground::core::path::{self, Loss, Vec2};
use flow_playground::core::rng::Rng;
use flow_playground::core::schedule::{Diffusion, Schedule, SigmaMode};
use flow_playground::engine::TrainConfig;
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::gpu_sampler::GpuSampler;
use flow_playground::engine::sampler::{self, Grid, Model, Particles, SamplerConfig, SamplerKind};
use flow_playground::nn::layout::MlpConfig;

mod common;

fn trained(loss: Loss, toy: Toy, steps: usize, mlp: MlpConfig) -> (CpuTrainer, DataSet) {
    let data = DataSet::toy(toy, 0);
    let mut t = CpuTrainer::new(TrainConfig {
        loss,
        mlp,
        ..TrainConfig::default()
    })
    .expect("valid");
    for _ in 0..steps {
        t.step(&data).expect("no divergence");
    }
    (t, data)
}

fn model(t: &CpuTrainer) -> Model<'_> {
    Model {
        layout: t.layout(),
        params: t.ema_params(),
        loss: t.config().loss,
        schedule: t.config().schedule,
    }
}

fn max_dist(a: &[Vec2], b: &[Vec2]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn gpu_integration_matches_the_cpu_for_every_scheme() {
    let Some(ctx) = common::gpu() else { return };
    let small = MlpConfig {
        width: 64,
        ..MlpConfig::default()
    };
    for loss in [Loss::Cfm, Loss::DsmEps] {
        let (t, data) = trained(loss, Toy::Moons, 150, small);
        for (kind, sigma, mode) in [
            (SamplerKind::Ode, 0.0, SigmaMode::Const),
            (SamplerKind::Heun, 0.0, SigmaMode::Const),
            (SamplerKind::Sde, 0.5, SigmaMode::Const),
            (SamplerKind::Sde, 1.0, SigmaMode::Beta),
        ] {
            let cfg = SamplerConfig {
                kind,
                steps: 40,
                diffusion: Diffusion { sigma, mode },
                seed: 3,
            };
            let n = 3000;
            let mut cpu = Particles::with_trajectories(n, cfg, 5);
            cpu.run(model(&t));
            let mut gpu = GpuSampler::new(
                ctx.clone(),
                t.layout().clone(),
                loss,
                Schedule::CondOt,
                &data,
                n as u32,
                5,
                cfg,
                Grid::square(4.0, 8),
            )
            .expect("sampler");
            gpu.set_params(t.ema_params());
            // A restart with another seed, then back to ours, in two pieces as the app
            // animates.
            gpu.restart_with_seed(99);
            gpu.advance(7);
            gpu.restart_with_seed(3);
            gpu.advance(15);
            gpu.advance(100);
            assert!(gpu.done());
            let x = gpu.positions_blocking();
            let e = max_dist(&x, &cpu.x);
            let et = max_dist(&gpu.trajectories_blocking(), &cpu.traj);
            println!(
                "{loss} {kind} sigma {sigma} {mode}: max abs error {e:e}, trajectories {et:e}"
            );
            assert!(e < 2e-3, "{loss} {kind}: positions differ by {e}");
            assert!(et < 2e-3, "{loss} {kind}: trajectories differ by {et}");
        }
    }
}

#[test]
fn gpu_fields_and_histogram_match_the_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let small = MlpConfig {
        width: 32,
        depth: 2,
        ..MlpConfig::default()
    };
    for (toy, loss) in [(Toy::Moons, Loss::Cfm), (Toy::Gmm5, Loss::Dsm)] {
        let (t, data) = trained(loss, toy, 400, small);
        let grid = Grid::square(4.5, 24);
        let cfg = SamplerConfig::default();
        let mut gpu = GpuSampler::new(
            ctx.clone(),
            t.layout().clone(),
            loss,
            Schedule::CondOt,
            &data,
            5000,
            0,
            cfg,
            grid,
        )
        .expect("sampler");
        gpu.set_params(t.ema_params());
        for time in [0.0f32, 0.3, 0.8] {
            gpu.compute_fields(time);
            let (learned, exact) = gpu.fields_blocking();
            let cpu_learned = sampler::learned_fields(model(&t), &grid, time);
            let cpu_exact = sampler::exact_fields(&data.mixture, Schedule::CondOt, &grid, time);
            let mut worst = [0.0f64; 4];
            for i in 0..grid.len() {
                let (gu, gs) = learned[i];
                let (cu, cs) = cpu_learned[i];
                let rel = |a: Vec2, b: Vec2| {
                    let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
                    (d / (1.0 + (b[0].powi(2) + b[1].powi(2)).sqrt())) as f64
                };
                worst[0] = worst[0].max(rel(gu, cu));
                worst[1] = worst[1].max(rel(gs, cs));
                let (ge, ce) = (&exact[i], &cpu_exact[i]);
                worst[2] = worst[2]
                    .max(rel(ge.field32(), ce.field32()).max(rel(ge.score32(), ce.score32())));
                worst[3] = worst[3]
                    .max((ge.log_density - ce.log_density).abs() / (1.0 + ce.log_density.abs()));
            }
            println!(
                "{toy} {loss} t={time}: learned u {:e}, s {:e}; exact u/s {:e}, log p {:e}",
                worst[0], worst[1], worst[2], worst[3]
            );
            assert!(
                worst[0] < 1e-4 && worst[1] < 1e-3,
                "{toy} t={time}: learned {worst:?}"
            );
            assert!(
                worst[2] < 1e-3 && worst[3] < 1e-4,
                "{toy} t={time}: exact {worst:?}"
            );
        }
        // Part of the way (t = 0.3): the histogram of a path still being travelled.
        gpu.advance(30);
        gpu.compute_histogram();
        let h = gpu.histogram_blocking();
        let hc = sampler::histogram(&gpu.positions_blocking(), &grid);
        assert_eq!(h, hc, "{toy}: histograms differ");
        let inside = h.iter().sum::<u32>();
        println!("{toy}: {inside} of 5000 particles inside the grid");
        assert!(
            inside > 1000,
            "{toy}: the histogram is nearly empty ({inside})"
        );
    }
}

/// Fokker-Planck: every sigma_t gives the same marginals, so SDE samples of a model
/// trained on moons are as good as the ODE's under sigma_t = beta_t and small constants.
#[test]
fn sde_samples_reach_the_data_for_several_sigmas() {
    let (t, data) = trained(Loss::Cfm, Toy::Moons, 3000, MlpConfig::default());
    for (sigma, mode) in [
        (0.5, SigmaMode::Beta),
        (1.0, SigmaMode::Beta),
        (0.5, SigmaMode::Const),
    ] {
        let cfg = SamplerConfig {
            kind: SamplerKind::Sde,
            steps: 100,
            diffusion: Diffusion { sigma, mode },
            seed: 7,
        };
        let samples = sampler::sample(model(&t), cfg, 4096);
        let q = metrics::evaluate(&data, &samples, 1000);
        println!("sde sigma {sigma} {mode}: {q:?}");
        assert!(
            q.sliced_w2 <= 2.5 * q.sliced_w2_floor,
            "sigma {sigma} {mode}: sliced W2 {} > 2.5 x floor {}",
            q.sliced_w2,
            q.sliced_w2_floor
        );
    }
}

/// The score derived from a trained vector field (s = (t u - x) / (1 - t) for CondOT)
/// is the marginal score: at least 10x closer to the exact one than an untrained
/// network's, at points drawn from p_t.
#[test]
fn derived_score_of_a_trained_field_is_the_marginal_score() {
    let (trained_t, data) = trained(Loss::Cfm, Toy::Moons, 3000, MlpConfig::default());
    let untrained = CpuTrainer::new(TrainConfig::default()).expect("valid");
    let mut rng = Rng::new(5, 77);
    for time in [0.25f32, 0.5, 0.75] {
        let c = Schedule::CondOt.coeffs(time);
        let xs: Vec<Vec2> = (0..2000)
            .map(|_| {
                let z = data.mixture.sample_one(&mut rng);
                path::sample_xt(c, z, [rng.normal(), rng.normal()])
            })
            .collect();
        let mse = |t: &CpuTrainer| {
            let m = Model {
                layout: t.layout(),
                params: t.ema_params(),
                loss: Loss::Cfm,
                schedule: Schedule::CondOt,
            };
            let mut out = vec![[0.0; 2]; xs.len()];
            sampler::evaluate(m, &xs, time, &mut out);
            xs.iter()
                .zip(&out)
                .map(|(x, u)| {
                    let s = path::score_from_field(c, *x, *u);
                    let e = marginal(&data.mixture, Schedule::CondOt, time, *x).score;
                    (s[0] as f64 - e[0]).powi(2) + (s[1] as f64 - e[1]).powi(2)
                })
                .sum::<f64>()
                / xs.len() as f64
        };
        let (good, bad) = (mse(&trained_t), mse(&untrained));
        println!("t = {time}: derived-score MSE trained {good:.4}, untrained {bad:.4}");
        assert!(10.0 * good < bad, "t = {time}: {good} vs {bad}");
    }
}
