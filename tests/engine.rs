//! Engine behaviour that the app relies on: determinism, divergence handling, live
//! settings, samplers reaching t = 1.

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::path::Loss;
use flow_playground::core::schedule::{Diffusion, SigmaMode};
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::sampler::{Model, Particles, SamplerConfig, SamplerKind};
use flow_playground::engine::{EngineError, TrainConfig};

fn small() -> TrainConfig {
    TrainConfig {
        batch: 600,
        mlp: flow_playground::nn::layout::MlpConfig {
            width: 32,
            depth: 2,
            ..Default::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn same_seed_same_run() {
    let data = DataSet::toy(Toy::Moons, 0);
    let mut a = CpuTrainer::new(small()).expect("valid");
    let mut b = CpuTrainer::new(small()).expect("valid");
    for _ in 0..20 {
        let (la, lb) = (a.step(&data).expect("ok"), b.step(&data).expect("ok"));
        assert_eq!(la, lb);
    }
    assert_eq!(a.params(), b.params());
    let mut c = CpuTrainer::new(TrainConfig { seed: 9, ..small() }).expect("valid");
    c.step(&data).expect("ok");
    assert_ne!(a.params(), c.params());
}

#[test]
fn a_non_finite_gradient_keeps_the_parameters() {
    let data = DataSet::toy(Toy::Moons, 0);
    let mut t = CpuTrainer::new(small()).expect("valid");
    t.step(&data).expect("ok");
    let mut broken = t.params().to_vec();
    broken[5] = f32::NAN;
    t.set_params(&broken).expect("same layout");
    let before: Vec<u32> = t.params().iter().map(|p| p.to_bits()).collect();
    match t.step(&data) {
        Err(EngineError::Diverged { .. }) => {}
        other => panic!("expected divergence, got {other:?}"),
    }
    let after: Vec<u32> = t.params().iter().map(|p| p.to_bits()).collect();
    assert_eq!(
        before, after,
        "a diverged step must not touch the parameters"
    );
    assert!(t.set_params(&[0.0; 3]).is_err());
}

#[test]
fn live_settings_apply_and_are_validated() {
    let data = DataSet::toy(Toy::Moons, 0);
    let mut t = CpuTrainer::new(small()).expect("valid");
    t.set_live(3e-3, 128, 0.9).expect("valid");
    assert_eq!(t.config().batch, 128);
    t.step(&data).expect("ok");
    assert!(t.set_live(-1.0, 128, 0.9).is_err());
    assert!(t.set_live(1e-3, 0, 0.9).is_err());
    assert!(t.set_live(1e-3, 128, 1.0).is_err());
}

#[test]
fn every_sampler_and_loss_reaches_t_one_with_finite_points() {
    let data = DataSet::toy(Toy::Gmm5, 0);
    for loss in Loss::ALL {
        let mut t = CpuTrainer::new(TrainConfig { loss, ..small() }).expect("valid");
        for _ in 0..50 {
            t.step(&data).expect("ok");
        }
        let model = Model {
            layout: t.layout(),
            params: t.ema_params(),
            loss,
            schedule: t.config().schedule,
        };
        for kind in [SamplerKind::Ode, SamplerKind::Heun, SamplerKind::Sde] {
            for mode in [SigmaMode::Const, SigmaMode::Beta] {
                let cfg = SamplerConfig {
                    kind,
                    steps: 20,
                    diffusion: Diffusion { sigma: 1.0, mode },
                    seed: 4,
                };
                let mut p = Particles::new(300, cfg);
                let x0 = p.x.clone();
                p.run(model);
                assert!(p.done() && (p.t() - 1.0).abs() < 1e-6);
                assert!(
                    p.x.iter().all(|x| x[0].is_finite() && x[1].is_finite()),
                    "{loss} {kind}"
                );
                assert_ne!(p.x, x0);
            }
        }
    }
}
