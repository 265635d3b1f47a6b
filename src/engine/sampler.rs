//! Particles from `N(0, I)` at `t = 0` to the data at `t = 1`, driven by a trained
//! network (MATH.md, "Sampling"): Euler and Heun for the ODE `dX = u dt`, and
//! Euler-Maruyama for the SDE `dX = (u + sigma_t^2 / 2 s) dt + sigma_t dW`.
//!
//! A vector-field network gives `u` and the derived score; a score (or noise) network
//! gives `s` and the derived field. The network and every conversion are evaluated at
//! `guarded_time(t)`, never where a formula divides by `alpha = 0` or `beta = 0`.
//! Initial noise and Brownian increments come from the counter RNG (particle, step),
//! the same integers as the shader twin.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::core::path::{Loss, Vec2, field_and_score, guarded_time};
use crate::core::rng::{self, stream};
use crate::core::schedule::{Diffusion, Schedule};
use crate::nn::cpu::{Workspace, forward};
use crate::nn::layout::Layout;

use super::{run_parallel, split_rows, worker_count};

/// The integration scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Euler on the ODE.
    #[default]
    Ode,
    /// Heun (trapezoidal predictor-corrector) on the ODE.
    Heun,
    /// Euler-Maruyama on the SDE with `sigma_t`.
    Sde,
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ode => "ode",
            Self::Heun => "heun",
            Self::Sde => "sde",
        })
    }
}

impl FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ode" | "euler" => Ok(Self::Ode),
            "heun" => Ok(Self::Heun),
            "sde" => Ok(Self::Sde),
            _ => Err(format!("unknown sampler '{s}' (expected ode, heun or sde)")),
        }
    }
}

/// How to sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// The scheme.
    pub kind: SamplerKind,
    /// Integration steps from 0 to 1.
    pub steps: u32,
    /// `sigma_t` (used by the SDE only).
    pub diffusion: Diffusion,
    /// Seeds the initial noise and the Brownian increments.
    pub seed: u32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            kind: SamplerKind::Ode,
            steps: 100,
            diffusion: Diffusion::default(),
            seed: 0,
        }
    }
}

/// The trained model the sampler needs: layout, parameters, and how to read them.
#[derive(Clone, Copy)]
pub struct Model<'a> {
    /// Network shape.
    pub layout: &'a Layout,
    /// Network parameters.
    pub params: &'a [f32],
    /// What the network outputs.
    pub loss: Loss,
    /// The path it was trained on.
    pub schedule: Schedule,
}

/// Initial particle `i` for `seed`: a standard normal pair.
#[inline]
pub fn prior_sample(i: u32, seed: u32) -> Vec2 {
    let w = rng::draw(i, 0, seed, stream::PRIOR);
    rng::box_muller(w[0], w[1])
}

/// The Brownian normal pair of particle `i` at integration step `k`.
#[inline]
pub fn brownian(i: u32, k: u32, seed: u32) -> Vec2 {
    let w = rng::draw(i, k, seed, stream::BROWNIAN);
    rng::box_muller(w[0], w[1])
}

/// The network output at many points and one time, in chunks over worker threads.
pub fn evaluate(model: Model<'_>, xs: &[Vec2], t: f32, out: &mut [Vec2]) {
    let dim = model.layout.input_dim();
    let parts = worker_count(xs.len(), 512);
    let mut chunks: Vec<(std::ops::Range<usize>, Vec<Vec2>)> = split_rows(xs.len(), parts)
        .into_iter()
        .map(|r| (r, Vec::new()))
        .collect();
    run_parallel(&mut chunks, |_, (range, result)| {
        const CHUNK: usize = 1024;
        let mut ws = Workspace::new(model.layout, CHUNK.min(range.len()).max(1));
        result.reserve(range.len());
        for start in range.clone().step_by(CHUNK) {
            let end = (start + CHUNK).min(range.end);
            let rows = end - start;
            if rows != ws.rows {
                ws = Workspace::new(model.layout, rows);
            }
            for (j, x) in xs[start..end].iter().enumerate() {
                model
                    .layout
                    .write_input(*x, t, &mut ws.input[j * dim..(j + 1) * dim]);
            }
            forward(model.layout, model.params, &mut ws, false);
            result.extend(ws.output().chunks_exact(2).map(|o| [o[0], o[1]]));
        }
    });
    let mut k = 0;
    for (_, r) in chunks {
        out[k..k + r.len()].copy_from_slice(&r);
        k += r.len();
    }
}

/// The drift `u + sigma_t^2 / 2 s` at every particle at time `t` (guarded).
fn drift(model: Model<'_>, xs: &[Vec2], t: f32, sigma_t: f32, out: &mut [Vec2]) {
    let tg = guarded_time(t);
    evaluate(model, xs, tg, out);
    let c = model.schedule.coeffs(tg);
    let half_s2 = 0.5 * sigma_t * sigma_t;
    for (o, x) in out.iter_mut().zip(xs) {
        let (u, s) = field_and_score(model.loss, c, *x, *o);
        *o = [u[0] + half_s2 * s[0], u[1] + half_s2 * s[1]];
    }
}

/// A cloud of particles advanced step by step, so a caller can stop at any `t`.
pub struct Particles {
    /// Positions (model coordinates).
    pub x: Vec<Vec2>,
    /// Integration steps taken.
    pub k: u32,
    /// Positions of the first `traj_m` particles after each step (`(k + 1) x traj_m`).
    pub traj: Vec<Vec2>,
    traj_m: usize,
    config: SamplerConfig,
    drift: Vec<Vec2>,
    scratch: Vec<Vec2>,
}

impl Particles {
    /// `n` particles drawn from the prior.
    pub fn new(n: usize, config: SamplerConfig) -> Self {
        Self::with_trajectories(n, config, 0)
    }

    /// `n` particles, keeping the path of the first `m`.
    pub fn with_trajectories(n: usize, config: SamplerConfig, m: usize) -> Self {
        let x: Vec<Vec2> = (0..n as u32)
            .map(|i| prior_sample(i, config.seed))
            .collect();
        let m = m.min(n);
        Particles {
            traj: x[..m].to_vec(),
            traj_m: m,
            x,
            k: 0,
            config,
            drift: vec![[0.0; 2]; n],
            scratch: vec![[0.0; 2]; n],
        }
    }

    /// The sampler settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The current time `k / steps`.
    pub fn t(&self) -> f32 {
        self.k as f32 / self.config.steps as f32
    }

    /// Whether the particles have reached `t = 1`.
    pub fn done(&self) -> bool {
        self.k >= self.config.steps
    }

    /// Advances one integration step (no-op at `t = 1`).
    pub fn step(&mut self, model: Model<'_>) {
        if self.done() {
            return;
        }
        let cfg = self.config;
        let h = 1.0 / cfg.steps as f32;
        let t = self.k as f32 * h;
        match cfg.kind {
            SamplerKind::Ode => {
                drift(model, &self.x, t, 0.0, &mut self.drift);
                for (x, d) in self.x.iter_mut().zip(&self.drift) {
                    x[0] += h * d[0];
                    x[1] += h * d[1];
                }
            }
            SamplerKind::Heun => {
                drift(model, &self.x, t, 0.0, &mut self.drift);
                let pred: Vec<Vec2> = self
                    .x
                    .iter()
                    .zip(&self.drift)
                    .map(|(x, d)| [x[0] + h * d[0], x[1] + h * d[1]])
                    .collect();
                drift(model, &pred, t + h, 0.0, &mut self.scratch);
                for ((x, d0), d1) in self.x.iter_mut().zip(&self.drift).zip(&self.scratch) {
                    x[0] += 0.5 * h * (d0[0] + d1[0]);
                    x[1] += 0.5 * h * (d0[1] + d1[1]);
                }
            }
            SamplerKind::Sde => {
                let sigma = cfg.diffusion.sigma_t(model.schedule, t);
                drift(model, &self.x, t, sigma, &mut self.drift);
                let noise = sigma * h.sqrt();
                for (i, (x, d)) in self.x.iter_mut().zip(&self.drift).enumerate() {
                    let xi = brownian(i as u32, self.k, cfg.seed);
                    x[0] += h * d[0] + noise * xi[0];
                    x[1] += h * d[1] + noise * xi[1];
                }
            }
        }
        self.k += 1;
        let m = self.traj_m;
        self.traj.extend_from_slice(&self.x[..m]);
    }

    /// Runs to `t = 1`.
    pub fn run(&mut self, model: Model<'_>) {
        while !self.done() {
            self.step(model);
        }
    }
}

/// `n` samples: particles from the prior integrated to `t = 1`.
pub fn sample(model: Model<'_>, config: SamplerConfig, n: usize) -> Vec<Vec2> {
    let mut p = Particles::new(n, config);
    p.run(model);
    p.x
}

/// A regular grid of cell centres over a rectangle of model space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Lower-left corner.
    pub lo: Vec2,
    /// Cell edge.
    pub cell: f32,
    /// Cells along x.
    pub nx: u32,
    /// Cells along y.
    pub ny: u32,
}

impl Grid {
    /// `n x n` cells over `[-half, half]^2`.
    pub fn square(half: f32, n: u32) -> Self {
        Grid {
            lo: [-half, -half],
            cell: 2.0 * half / n as f32,
            nx: n,
            ny: n,
        }
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        (self.nx * self.ny) as usize
    }

    /// Whether the grid has no cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Centre of cell `i` (row-major from the lower left).
    pub fn point(&self, i: usize) -> Vec2 {
        let (ix, iy) = (i as u32 % self.nx, i as u32 / self.nx);
        [
            self.lo[0] + (ix as f32 + 0.5) * self.cell,
            self.lo[1] + (iy as f32 + 0.5) * self.cell,
        ]
    }

    /// Every cell centre.
    pub fn points(&self) -> Vec<Vec2> {
        (0..self.len()).map(|i| self.point(i)).collect()
    }
}

/// The learned field and score at every grid point at time `t` (guarded).
pub fn learned_fields(model: Model<'_>, grid: &Grid, t: f32) -> Vec<(Vec2, Vec2)> {
    let pts = grid.points();
    let tg = guarded_time(t);
    let mut out = vec![[0.0; 2]; pts.len()];
    evaluate(model, &pts, tg, &mut out);
    let c = model.schedule.coeffs(tg);
    pts.iter()
        .zip(&out)
        .map(|(x, o)| field_and_score(model.loss, c, *x, *o))
        .collect()
}

/// The exact marginal at every grid point at time `t`.
pub fn exact_fields(
    mixture: &crate::core::data::Mixture,
    schedule: Schedule,
    grid: &Grid,
    t: f32,
) -> Vec<crate::core::marginal::Marginal> {
    grid.points()
        .iter()
        .map(|&x| crate::core::marginal::marginal(mixture, schedule, t, x))
        .collect()
}

/// Particle counts per grid cell (particles outside are not counted).
pub fn histogram(xs: &[Vec2], grid: &Grid) -> Vec<u32> {
    let mut h = vec![0u32; grid.len()];
    for p in xs {
        let qx = (p[0] - grid.lo[0]) / grid.cell;
        let qy = (p[1] - grid.lo[1]) / grid.cell;
        if qx >= 0.0 && qy >= 0.0 && qx < grid.nx as f32 && qy < grid.ny as f32 {
            h[(qy as u32 * grid.nx + qx as u32) as usize] += 1;
        }
    }
    h
}
