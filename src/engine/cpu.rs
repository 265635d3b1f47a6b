//! The CPU backend: the reference every GPU number is checked against, and the
//! fallback where no GPU can compute (WebGL2 browsers). Data-parallel over the batch:
//! each worker draws its own rows, runs forward and backward on them, and the partial
//! gradients are added in worker order before one Adam update.

use crate::core::data::DataSet;
use crate::core::marginal::marginal;
use crate::core::path;
use crate::nn::cpu::{Adam, Workspace, backward, forward};
use crate::nn::layout::Layout;

use super::{EngineError, TrainConfig, batch_row, run_parallel, split_rows, worker_count};

/// Rows below which another worker thread is not worth its start.
const MIN_ROWS_PER_WORKER: usize = 256;

struct Worker {
    rows: std::ops::Range<usize>,
    ws: Workspace,
    targets: Vec<f32>,
    d_out: Vec<f32>,
    grads: Vec<f32>,
    loss: f64,
}

/// The CPU trainer: parameters, Adam state and per-worker buffers.
pub struct CpuTrainer {
    config: TrainConfig,
    layout: Layout,
    params: Vec<f32>,
    ema: Vec<f32>,
    adam: Adam,
    grads: Vec<f32>,
    workers: Vec<Worker>,
    steps_done: u64,
}

/// The two losses of the same rows: the tractable conditional one and the exact
/// marginal one (the lecture's Theorem 18 says their gap does not depend on theta).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPair {
    /// `L_CFM` (or `L_DSM`) on the rows.
    pub conditional: f64,
    /// `L_FM` (or explicit score matching) on the same rows, from the exact marginal.
    pub marginal: f64,
}

impl CpuTrainer {
    /// A fresh model for `config`, parameters initialised from its seed.
    pub fn new(config: TrainConfig) -> Result<Self, EngineError> {
        config.validate()?;
        let layout = Layout::new(config.mlp).map_err(EngineError::Invalid)?;
        let params = layout.init_params(config.seed);
        let n = layout.n_params;
        let mut trainer = CpuTrainer {
            config,
            layout,
            ema: params.clone(),
            params,
            adam: Adam::new(n),
            grads: vec![0.0; n],
            workers: Vec::new(),
            steps_done: 0,
        };
        trainer.make_workers();
        Ok(trainer)
    }

    fn make_workers(&mut self) {
        let b = self.config.batch;
        let n = self.layout.n_params;
        self.workers = split_rows(b, worker_count(b, MIN_ROWS_PER_WORKER))
            .into_iter()
            .map(|rows| {
                let r = rows.len();
                Worker {
                    ws: Workspace::new(&self.layout, r),
                    targets: vec![0.0; 2 * r],
                    d_out: vec![0.0; 2 * r],
                    grads: vec![0.0; n],
                    loss: 0.0,
                    rows,
                }
            })
            .collect();
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The current parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The moving average of the parameters, which the samplers use (the parameters
    /// themselves when the decay is 0).
    pub fn ema_params(&self) -> &[f32] {
        if self.config.ema > 0.0 {
            &self.ema
        } else {
            &self.params
        }
    }

    /// Adam's state.
    pub fn adam(&self) -> &Adam {
        &self.adam
    }

    /// Replaces the parameters (same layout) and restarts Adam and the average from
    /// them: for loading a model, or giving two backends the same start.
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), EngineError> {
        if params.len() != self.layout.n_params {
            return Err(EngineError::Invalid(format!(
                "expected {} parameters, got {}",
                self.layout.n_params,
                params.len()
            )));
        }
        self.params.copy_from_slice(params);
        self.ema.copy_from_slice(params);
        self.adam = Adam::new(params.len());
        Ok(())
    }

    /// Carries on from another engine's state: its parameters, their average and its
    /// step count (Adam's moments start afresh).
    pub fn resume(&mut self, params: &[f32], ema: &[f32], steps: u64) -> Result<(), EngineError> {
        self.set_params(params)?;
        if ema.len() != self.ema.len() {
            return Err(EngineError::Invalid(format!(
                "expected {} averaged parameters, got {}",
                self.ema.len(),
                ema.len()
            )));
        }
        self.ema.copy_from_slice(ema);
        self.steps_done = steps;
        Ok(())
    }

    /// Steps applied so far.
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// Changes the settings that do not invalidate the model (learning rate, batch,
    /// EMA decay).
    pub fn set_live(&mut self, lr: f32, batch: usize, ema: f32) -> Result<(), EngineError> {
        let next = TrainConfig {
            lr,
            batch,
            ema,
            ..self.config
        };
        next.validate()?;
        let rebuild = batch != self.config.batch;
        self.config = next;
        if rebuild {
            self.make_workers();
        }
        Ok(())
    }

    /// One training step on `data`; returns the batch's loss. A non-finite loss or
    /// gradient leaves the parameters as they were and returns [`EngineError::Diverged`].
    pub fn step(&mut self, data: &DataSet) -> Result<f32, EngineError> {
        let cfg = self.config;
        let layout = &self.layout;
        let params = &self.params;
        let step = self.steps_done as u32;
        let inv_b = 1.0 / cfg.batch as f32;
        let dim = layout.input_dim();
        run_parallel(&mut self.workers, |_, w| {
            for (local, i) in w.rows.clone().enumerate() {
                let row = batch_row(
                    cfg.loss,
                    cfg.schedule,
                    &data.mixture,
                    cfg.seed,
                    step,
                    i as u32,
                );
                layout.write_input(
                    row.x,
                    row.t,
                    &mut w.ws.input[local * dim..(local + 1) * dim],
                );
                w.targets[2 * local] = row.target[0];
                w.targets[2 * local + 1] = row.target[1];
            }
            forward(layout, params, &mut w.ws, true);
            let mut loss = 0.0f64;
            for ((d, &y), &t) in w.d_out.iter_mut().zip(w.ws.output()).zip(&w.targets) {
                let r = y - t;
                loss += (r * r) as f64;
                *d = 2.0 * r * inv_b;
            }
            w.loss = loss * inv_b as f64;
            backward(layout, params, &mut w.ws, &w.d_out, &mut w.grads);
        });
        // Sum the partials in worker order: the result does not depend on timing.
        let mut loss = 0.0f64;
        self.grads.copy_from_slice(&self.workers[0].grads);
        loss += self.workers[0].loss;
        for w in &self.workers[1..] {
            for (g, p) in self.grads.iter_mut().zip(&w.grads) {
                *g += p;
            }
            loss += w.loss;
        }
        let loss = loss as f32;
        if !loss.is_finite() || !self.grads.iter().all(|g| g.is_finite()) {
            return Err(EngineError::Diverged {
                step: self.steps_done,
                loss,
            });
        }
        self.adam.update(cfg.adam(), &mut self.params, &self.grads);
        let d = cfg.ema;
        for (e, p) in self.ema.iter_mut().zip(&self.params) {
            *e = d * *e + (1.0 - d) * p;
        }
        self.steps_done += 1;
        Ok(loss)
    }

    /// `L_CFM` and `L_FM` of the current parameters on the first `rows` rows of the
    /// batch that step `probe_step` draws.
    pub fn loss_pair(&self, data: &DataSet, probe_step: u32, rows: usize) -> LossPair {
        loss_pair(
            &self.layout,
            &self.params,
            &self.config,
            data,
            probe_step,
            rows,
        )
    }
}

/// `L_CFM` and `L_FM` of `params` on the first `rows` rows of batch `probe_step`.
pub fn loss_pair(
    layout: &Layout,
    params: &[f32],
    cfg: &TrainConfig,
    data: &DataSet,
    probe_step: u32,
    rows: usize,
) -> LossPair {
    let mut ws = Workspace::new(layout, rows);
    let dim = layout.input_dim();
    let mut picked = Vec::with_capacity(rows);
    for i in 0..rows {
        let row = batch_row(
            cfg.loss,
            cfg.schedule,
            &data.mixture,
            cfg.seed,
            probe_step,
            i as u32,
        );
        layout.write_input(row.x, row.t, &mut ws.input[i * dim..(i + 1) * dim]);
        picked.push(row);
    }
    forward(layout, params, &mut ws, false);
    let out = ws.output();
    let (mut lc, mut lm) = (0.0f64, 0.0f64);
    for (i, row) in picked.iter().enumerate() {
        let m = marginal(&data.mixture, cfg.schedule, row.t, row.x);
        let c = cfg.schedule.coeffs(row.t);
        let exact = path::marginal_target(cfg.loss, c, m.field32(), m.score32());
        for k in 0..2 {
            let y = out[2 * i + k] as f64;
            lc += (y - row.target[k] as f64).powi(2);
            lm += (y - exact[k] as f64).powi(2);
        }
    }
    LossPair {
        conditional: lc / rows as f64,
        marginal: lm / rows as f64,
    }
}
