//! The lecture's Theorem 18, numerically: `L_CFM(theta) - L_FM(theta)` is the same
//! constant `C = E|u_t(x|z)|^2 - E|u_t(x)|^2` for every network, measured on the same
//! rows for an untrained network, another untrained one and a trained one.

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::marginal::marginal;
use flow_playground::core::path;
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::{TrainConfig, batch_row};

const ROWS: usize = 20_000;
const PROBE: u32 = 7_777_777;

fn constant_c(cfg: &TrainConfig, data: &DataSet) -> f64 {
    let mut c = 0.0;
    for i in 0..ROWS {
        let r = batch_row(
            cfg.loss,
            cfg.schedule,
            &data.mixture,
            cfg.seed,
            PROBE,
            i as u32,
        );
        let m = marginal(&data.mixture, cfg.schedule, r.t, r.x);
        let k = cfg.schedule.coeffs(r.t);
        let exact = path::marginal_target(cfg.loss, k, m.field32(), m.score32());
        let sq = |v: [f32; 2]| (v[0] as f64).powi(2) + (v[1] as f64).powi(2);
        c += sq(r.target) - sq(exact);
    }
    c / ROWS as f64
}

fn check(toy: Toy, loss: path::Loss) {
    let data = DataSet::toy(toy, 0);
    let base = TrainConfig {
        loss,
        ..TrainConfig::default()
    };
    let a = CpuTrainer::new(TrainConfig { seed: 1, ..base }).expect("valid");
    let b = CpuTrainer::new(TrainConfig { seed: 2, ..base }).expect("valid");
    let mut trained = CpuTrainer::new(TrainConfig { seed: 3, ..base }).expect("valid");
    for _ in 0..300 {
        trained.step(&data).expect("no divergence");
    }
    // All three evaluated on the rows of the first network's config (seed 1).
    let cfg = *a.config();
    let pairs: Vec<_> = [&a, &b, &trained]
        .iter()
        .map(|t| {
            flow_playground::engine::cpu::loss_pair(
                t.layout(),
                t.params(),
                &cfg,
                &data,
                PROBE,
                ROWS,
            )
        })
        .collect();
    let c = constant_c(&cfg, &data);
    let gaps: Vec<f64> = pairs.iter().map(|p| p.conditional - p.marginal).collect();
    println!("{toy} {loss}: C = {c:.4}, gaps {gaps:?}, pairs {pairs:?}");
    // The networks really differ...
    assert!(
        (pairs[0].conditional - pairs[2].conditional).abs() > 0.2,
        "{toy} {loss}: the trained and untrained losses are too close to tell"
    );
    // ...yet the gap is the same constant, and it is C.
    for g in &gaps {
        assert!(
            (g - c).abs() < 0.03 * c.abs() + 0.02,
            "{toy} {loss}: gap {g} differs from C = {c}"
        );
    }
}

#[test]
fn cfm_gap_is_constant_on_a_point_set() {
    check(Toy::Moons, path::Loss::Cfm);
}

#[test]
fn cfm_gap_is_constant_on_a_gaussian_mixture() {
    check(Toy::Gmm5, path::Loss::Cfm);
}

#[test]
fn noise_prediction_gap_is_constant() {
    check(Toy::EightGaussians, path::Loss::DsmEps);
}
