//! The CPU reference network: forward, backward and Adam in `f32` over the flat
//! parameter buffer of [`Layout`].
//!
//! Shapes: `B` rows, layer `l` maps `X_l (B x fan_in)` to `Z_l = X_l W_l + b_l`.
//! Hidden layers keep `X_{l+1} = act(Z_l)` and `D_l = act'(Z_l)` for the backward pass.
//!
//! Backward, given `dZ` of a layer: the input gradient `dX = dZ W^T` (skipped for the
//! first layer), then the weight gradients `dW = X^T dZ` and `db = sum_rows dZ`. The
//! previous layer's `dZ` is `dX * D` elementwise.
//!
//! Matrix products go through the `gemm` crate (runtime-dispatched SIMD kernels, also
//! on wasm32 with simd128); the elementwise passes are written to auto-vectorise and
//! are compiled a second time for AVX2 + FMA, picked at run time.

use super::layout::{Activation, Layout};

/// `c (m x n) = [c +] a (m x k) b (k x n)`; each matrix given by its slice and its
/// row and column strides. Panics if a stride pattern reaches outside a slice.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    c: &mut [f32],
    (c_rs, c_cs): (usize, usize),
    accumulate: bool,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, c_rs, c_cs) < c.len(), "matmul: c too small");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * c_rs + j * c_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(last(m, k, a_rs, a_cs) < a.len(), "matmul: a too small");
    assert!(last(k, n, b_rs, b_cs) < b.len(), "matmul: b too small");
    // SAFETY: the asserts above keep every index the kernel touches inside the slices;
    // `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `e^x` to about 2e-7 relative error, branch-free so that loops over it vectorise.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    p * scale
}

/// `act(z)` and `act'(z)` of one value.
#[inline(always)]
pub fn activate_one(act: Activation, z: f32) -> (f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + exp_approx(-z));
            (z * s, s * (1.0 + z * (1.0 - s)))
        }
        Activation::Relu => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.0, 0.0)
            }
        }
        Activation::Tanh => {
            let h = 1.0 - 2.0 / (exp_approx(2.0 * z) + 1.0);
            (h, 1.0 - h * h)
        }
    }
}

#[inline(always)]
fn activate_body(act: Activation, z: &mut [f32], d: Option<&mut [f32]>) {
    match d {
        Some(d) => {
            for (zi, di) in z.iter_mut().zip(d.iter_mut()) {
                let (h, g) = activate_one(act, *zi);
                *zi = h;
                *di = g;
            }
        }
        None => {
            for zi in z.iter_mut() {
                *zi = activate_one(act, *zi).0;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn activate_avx2(act: Activation, z: &mut [f32], d: Option<&mut [f32]>) {
    activate_body(act, z, d)
}

/// Applies the activation in place (`z` becomes `act(z)`), writing `act'(z)` into `d`
/// when given.
pub fn activate(act: Activation, z: &mut [f32], d: Option<&mut [f32]>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function was compiled for.
        unsafe { activate_avx2(act, z, d) };
        return;
    }
    activate_body(act, z, d)
}

/// The buffers of one forward and backward pass over `rows` rows.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// Rows this workspace holds.
    pub rows: usize,
    /// Input `X_0` (`rows x I`).
    pub input: Vec<f32>,
    /// `X_1 .. X_L` (hidden outputs) and the network output (`rows x 2`) last.
    pub acts: Vec<Vec<f32>>,
    /// `D_l = act'(Z_l)` for the hidden layers.
    pub dacts: Vec<Vec<f32>>,
    /// Gradient scratch, two buffers of `rows x max width`.
    grad: [Vec<f32>; 2],
}

impl Workspace {
    /// Buffers for `rows` rows of `layout`.
    pub fn new(layout: &Layout, rows: usize) -> Self {
        let widest = layout.layers.iter().map(|l| l.fan_out).max().unwrap_or(2);
        Workspace {
            rows,
            input: vec![0.0; rows * layout.input_dim()],
            acts: layout
                .layers
                .iter()
                .map(|l| vec![0.0; rows * l.fan_out])
                .collect(),
            dacts: layout.layers[..layout.layers.len() - 1]
                .iter()
                .map(|l| vec![0.0; rows * l.fan_out])
                .collect(),
            grad: [vec![0.0; rows * widest], vec![0.0; rows * widest]],
        }
    }

    /// The network output of the last forward pass (`rows x 2`).
    pub fn output(&self) -> &[f32] {
        self.acts.last().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Forward pass over `ws.input`; with `train`, keeps the activation derivatives.
pub fn forward(layout: &Layout, params: &[f32], ws: &mut Workspace, train: bool) {
    let rows = ws.rows;
    let act = layout.config.activation;
    let n_layers = layout.layers.len();
    for (l, layer) in layout.layers.iter().enumerate() {
        let (before, after) = ws.acts.split_at_mut(l);
        let x: &[f32] = if l == 0 { &ws.input } else { &before[l - 1] };
        let z = &mut after[0];
        let bias = &params[layer.b_offset..layer.b_offset + layer.fan_out];
        for row in z.chunks_exact_mut(layer.fan_out) {
            row.copy_from_slice(bias);
        }
        matmul(
            (rows, layer.fan_out, layer.fan_in),
            z,
            (layer.fan_out, 1),
            true,
            x,
            (layer.fan_in, 1),
            &params[layer.w_offset..layer.b_offset],
            (layer.fan_out, 1),
        );
        if l + 1 < n_layers {
            let d = if train {
                Some(ws.dacts[l].as_mut_slice())
            } else {
                None
            };
            activate(act, z, d);
        }
    }
}

/// Backward pass from `d_out` (`rows x 2`, the gradient of the loss with respect to
/// the output), after a `train` forward pass. Writes (does not add) `grads`.
pub fn backward(
    layout: &Layout,
    params: &[f32],
    ws: &mut Workspace,
    d_out: &[f32],
    grads: &mut [f32],
) {
    let rows = ws.rows;
    let [ga, gb] = &mut ws.grad;
    // `cur` holds dZ of the layer being processed, `next` receives dX.
    let (mut cur, mut next) = (ga, gb);
    cur[..rows * 2].copy_from_slice(&d_out[..rows * 2]);
    for l in (0..layout.layers.len()).rev() {
        let layer = layout.layers[l];
        let (fi, fo) = (layer.fan_in, layer.fan_out);
        let x: &[f32] = if l == 0 { &ws.input } else { &ws.acts[l - 1] };
        let dz = &cur[..rows * fo];
        // Input gradient first (it needs W before anything changes): dX = dZ W^T.
        if l > 0 {
            let dx = &mut next[..rows * fi];
            matmul(
                (rows, fi, fo),
                dx,
                (fi, 1),
                false,
                dz,
                (fo, 1),
                &params[layer.w_offset..layer.b_offset],
                (1, fo),
            );
            for (g, d) in dx.iter_mut().zip(&ws.dacts[l - 1]) {
                *g *= d;
            }
        }
        // Weight gradient dW = X^T dZ (fi x fo), bias gradient = column sums of dZ.
        matmul(
            (fi, fo, rows),
            &mut grads[layer.w_offset..layer.b_offset],
            (fo, 1),
            false,
            x,
            (1, fi),
            dz,
            (fo, 1),
        );
        let db = &mut grads[layer.b_offset..layer.b_offset + fo];
        db.fill(0.0);
        for row in dz.chunks_exact(fo) {
            for (b, g) in db.iter_mut().zip(row) {
                *b += g;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
}

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam's moment buffers, step count and the running powers `beta1^t`, `beta2^t`.
///
/// The powers are kept as `f32` products, one rounded multiplication per step, so the
/// shader (which does the same) gets bit-identical bias corrections: `1 - beta2^t`
/// cancels badly, and a `pow` of a few ulps error would show as a relative 1e-4.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// Updates applied so far.
    pub t: u32,
    /// `beta1^t`.
    pub beta1_t: f32,
    /// `beta2^t`.
    pub beta2_t: f32,
}

impl Adam {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            beta1_t: 1.0,
            beta2_t: 1.0,
        }
    }

    /// One bias-corrected Adam update of `params` with `grads`.
    pub fn update(&mut self, cfg: AdamConfig, params: &mut [f32], grads: &[f32]) {
        self.t += 1;
        self.beta1_t *= cfg.beta1;
        self.beta2_t *= cfg.beta2;
        let (c1, c2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        for i in 0..params.len() {
            let g = grads[i];
            self.m[i] = cfg.beta1 * self.m[i] + (1.0 - cfg.beta1) * g;
            self.v[i] = cfg.beta2 * self.v[i] + (1.0 - cfg.beta2) * g * g;
            let m_hat = self.m[i] / c1;
            let v_hat = self.v[i] / c2;
            params[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layout::{MlpConfig, TimeFeatures};

    #[test]
    fn exp_approx_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8000..8000 {
            let x = i as f32 * 0.01;
            let e = (x as f64).exp();
            let rel = ((exp_approx(x) as f64 - e) / e).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }

    #[test]
    fn silu_hand_values() {
        // SiLU at 3, 1, 4, 0.15 and its derivative there.
        let cases = [
            (3.0, 2.8577, 1.0881),
            (1.0, 0.7311, 0.9277),
            (4.0, 3.9281, 1.0527),
            (0.15, 0.0806, 0.5747),
        ];
        for (z, h, d) in cases {
            let (hh, dd) = activate_one(Activation::Silu, z);
            assert!(
                (hh - h).abs() < 1e-4 && (dd - d).abs() < 1e-4,
                "{z}: {hh} {dd}"
            );
        }
        let (h, d) = activate_one(Activation::Tanh, 0.5);
        assert!((h - 0.5f32.tanh()).abs() < 1e-6 && (d - (1.0 - h * h)).abs() < 1e-6);
    }

    #[test]
    fn matmul_matches_naive_with_transposes() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let mut c = vec![1.0f32; m * n];
        // c += a * b^T^T, with b read through its transpose strides.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        matmul((m, n, k), &mut c, (n, 1), true, &a, (k, 1), &bt, (1, k));
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((c[i * n + j] - want).abs() < 1e-5);
            }
        }
    }

    /// Loss = sum of squares of the output; gradients against central differences in
    /// `f64` arithmetic on perturbed `f32` parameters.
    #[test]
    fn gradients_match_finite_differences() {
        for act in Activation::ALL {
            for time in [TimeFeatures::Raw, TimeFeatures::Sinusoidal] {
                let layout = Layout::new(MlpConfig {
                    width: 6,
                    depth: 2,
                    activation: act,
                    time,
                })
                .expect("valid");
                let rows = 3;
                let mut ws = Workspace::new(&layout, rows);
                for r in 0..rows {
                    let row = &mut ws.input[r * layout.input_dim()..(r + 1) * layout.input_dim()];
                    layout.write_input(
                        [0.3 * r as f32 - 0.4, 0.9 - 0.5 * r as f32],
                        0.2 + 0.3 * r as f32,
                        row,
                    );
                }
                let params = layout.init_params(3);
                let loss = |p: &[f32], ws: &mut Workspace| -> f64 {
                    forward(&layout, p, ws, false);
                    ws.output().iter().map(|&y| (y as f64) * (y as f64)).sum()
                };
                forward(&layout, &params, &mut ws, true);
                let d_out: Vec<f32> = ws.output().iter().map(|y| 2.0 * y).collect();
                let mut grads = vec![0.0; layout.n_params];
                backward(&layout, &params, &mut ws, &d_out, &mut grads);
                let h = if act == Activation::Relu {
                    1e-3f32
                } else {
                    1e-2
                };
                let mut worst = 0.0f64;
                for i in 0..layout.n_params {
                    let mut p = params.clone();
                    p[i] += h;
                    let up = loss(&p, &mut ws);
                    p[i] -= 2.0 * h;
                    let down = loss(&p, &mut ws);
                    let fd = (up - down) / (2.0 * h as f64);
                    let err = (fd - grads[i] as f64).abs() / (1e-2 + fd.abs());
                    worst = worst.max(err);
                }
                assert!(worst < 1e-2, "{act} {time}: worst relative error {worst}");
            }
        }
    }

    #[test]
    fn adam_matches_a_hand_computation() {
        let cfg = AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(2);
        let mut p = vec![1.0f32, -2.0];
        adam.update(cfg, &mut p, &[0.5, -4.0]);
        // Step 1: m_hat = g, v_hat = g^2, so the step is lr * sign(g) (up to eps).
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
            "{p:?}"
        );
        adam.update(cfg, &mut p, &[1.0, 0.0]);
        // Step 2 by hand for p[0]: m = 0.9*0.05 + 0.1*1 = 0.145, v = 0.999*0.00025 +
        // 0.001*1 = 0.00124975; m_hat = 0.145/0.19, v_hat = 0.00124975/0.001999.
        let m_hat = 0.145f64 / 0.19;
        let v_hat = 0.001_249_75f64 / (1.0 - 0.999f64 * 0.999);
        let want = 0.9 - 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
        // f32 rounding of 1 - 0.999^2 costs a few 1e-5 relative in v_hat.
        assert!((p[0] as f64 - want).abs() < 2e-5, "{} vs {want}", p[0]);
    }
}
