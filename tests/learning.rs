//! Learning: with the default settings the CPU engine learns the toy sets well enough
//! that its samples sit within 2x of the data's own sliced-W2 floor. Slow in a debug
//! build: the test command runs `cargo test --release`.

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::metrics;
use flow_playground::engine::TrainConfig;
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::sampler::{self, Model, SamplerConfig};

fn train_and_score(toy: Toy) -> metrics::Quality {
    let data = DataSet::toy(toy, 0);
    let config = TrainConfig::default();
    let mut trainer = CpuTrainer::new(config).expect("valid defaults");
    let mut first = 0.0;
    let mut last = 0.0;
    for s in 0..3000 {
        let loss = trainer.step(&data).expect("no divergence");
        if s < 50 {
            first += loss / 50.0;
        }
        if s >= 2950 {
            last += loss / 50.0;
        }
    }
    assert!(last < first, "{toy}: loss did not fall ({first} -> {last})");
    let model = Model {
        layout: trainer.layout(),
        params: trainer.ema_params(),
        loss: config.loss,
        schedule: config.schedule,
    };
    let samples = sampler::sample(model, SamplerConfig::default(), 4096);
    let q = metrics::evaluate(&data, &samples, 1000);
    println!("{toy}: {q:?}");
    q
}

#[test]
fn defaults_learn_moons_8gaussians_and_checkerboard() {
    for toy in [Toy::Moons, Toy::EightGaussians, Toy::Checkerboard] {
        let q = train_and_score(toy);
        assert!(
            q.sliced_w2 <= 2.0 * q.sliced_w2_floor,
            "{toy}: sliced W2 {} > 2 x floor {}",
            q.sliced_w2,
            q.sliced_w2_floor
        );
        assert!(
            q.energy <= 3.0 * q.energy_floor,
            "{toy}: energy {} > 3 x floor {}",
            q.energy,
            q.energy_floor
        );
        assert!(q.sliced_w2 < 0.5 * q.sliced_w2_ceiling, "{toy}: {q:?}");
    }
}
