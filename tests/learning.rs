//! Learning: with the default settings both engines learn the toy sets well enough
//! that their samples sit within 2x of the data's own sliced-W2 floor. Slow in a debug
//! build: the test command runs `cargo test --release`.

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::metrics;
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::gpu::GpuTrainer;
use flow_playground::engine::sampler::{self, Model, SamplerConfig};
use flow_playground::engine::{TrainConfig, Trainer};

mod common;

const TOYS: [Toy; 3] = [Toy::Moons, Toy::EightGaussians, Toy::Checkerboard];

fn train_and_score(mut trainer: Trainer, data: &DataSet, config: TrainConfig) -> metrics::Quality {
    let losses = trainer.run_steps(data, 3000).expect("no divergence");
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    let (first, last) = (mean(&losses[..50]), mean(&losses[2950..]));
    assert!(last < first, "loss did not fall ({first} -> {last})");
    let params = trainer.sampling_params();
    let model = Model {
        layout: trainer.layout(),
        params: &params,
        loss: config.loss,
        schedule: config.schedule,
    };
    let samples = sampler::sample(model, SamplerConfig::default(), 4096);
    metrics::evaluate(data, &samples, 1000)
}

fn assert_good(toy: Toy, backend: &str, q: &metrics::Quality) {
    println!("{backend} {toy}: {q:?}");
    assert!(
        q.sliced_w2 <= 2.0 * q.sliced_w2_floor,
        "{backend} {toy}: sliced W2 {} > 2 x floor {}",
        q.sliced_w2,
        q.sliced_w2_floor
    );
    assert!(
        q.energy <= 3.0 * q.energy_floor,
        "{backend} {toy}: energy {} > 3 x floor {}",
        q.energy,
        q.energy_floor
    );
    assert!(
        q.sliced_w2 < 0.5 * q.sliced_w2_ceiling,
        "{backend} {toy}: {q:?}"
    );
}

#[test]
fn cpu_defaults_learn_moons_8gaussians_and_checkerboard() {
    let config = TrainConfig::default();
    for toy in TOYS {
        let data = DataSet::toy(toy, 0);
        let t = Trainer::Cpu(Box::new(CpuTrainer::new(config).expect("valid defaults")));
        assert_good(toy, "cpu", &train_and_score(t, &data, config));
    }
}

#[test]
fn gpu_defaults_learn_moons_8gaussians_and_checkerboard() {
    let Some(ctx) = common::gpu() else { return };
    let config = TrainConfig::default();
    for toy in TOYS {
        let data = DataSet::toy(toy, 0);
        let g = GpuTrainer::new(ctx.clone(), config, &data, None).expect("gpu trainer");
        let t = Trainer::Gpu(Box::new(g));
        assert_good(toy, "gpu", &train_and_score(t, &data, config));
    }
}
