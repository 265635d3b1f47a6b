// Bindings and settings shared by every training kernel.
//
// All float state lives in one storage buffer, the arena: parameters at offset 0 (the
// layout of src/nn/layout.rs), Adam's moments, the parameter average, per-chunk
// gradient partials, the activations of the batch and the loss ring. Offsets come in
// the uniforms, so one GEMM kernel serves the forward pass, the backward data products
// and the weight gradients.

struct Globals {
    seed: u32,
    batch: u32,
    loss_code: u32,
    schedule_code: u32,
    poly_k: f32,
    t_max: f32,
    n_comp: u32,
    input_dim: u32,
    time_mode: u32,
    n_params: u32,
    n_chunks: u32,
    act: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    adam_eps: f32,
    ema: f32,
    x0_off: u32,
    target_off: u32,
    y_off: u32,
    dy_off: u32,
    lp_off: u32,
    n_lp: u32,
    ring_off: u32,
    m_off: u32,
    v_off: u32,
    ema_off: u32,
    partial_off: u32,
    pow_off: u32,
    x0_stride: u32,
    pad1: u32,
    pad2: u32,
}

// One matrix product C (m x n) = A (m x k) B (k x n) over arena offsets and strides.
// Activations are stored with a trailing column of ones, so the bias is one more row
// of the weight matrix ([X | 1] [W; b]) and the products need no special cases.
struct Gemm {
    m: u32,
    n: u32,
    k: u32,
    mode: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    d_rs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_rs: u32,
    c_off: u32,
    d_off: u32,
    k_chunk: u32,
    c_chunk_stride: u32,
}

@group(0) @binding(0) var<storage, read_write> arena: array<f32>;
// ctrl[0]: steps applied; ctrl[1]: 1 once a loss was not finite.
@group(0) @binding(1) var<storage, read_write> ctrl: array<u32>;
// Mixture components: (mean.x, mean.y, std, 0).
@group(0) @binding(2) var<storage, read> mixture: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> g: Globals;
@group(0) @binding(4) var<uniform> gm: Gemm;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

struct Coeffs {
    alpha: f32,
    beta: f32,
    alpha_dot: f32,
    beta_dot: f32,
}

// alpha_t, beta_t and their derivatives (src/core/schedule.rs).
fn schedule(t: f32) -> Coeffs {
    switch g.schedule_code {
        case 1u: {
            let a = HALF_PI * t;
            return Coeffs(sin(a), cos(a), HALF_PI * cos(a), -HALF_PI * sin(a));
        }
        case 2u: {
            let r = sqrt(max(1.0 - t, 0.0));
            return Coeffs(t, r, 1.0, -0.5 / r);
        }
        case 3u: {
            let k = g.poly_k;
            return Coeffs(pow(t, k), 1.0 - t, k * pow(t, k - 1.0), -1.0);
        }
        default: {
            return Coeffs(t, 1.0 - t, 1.0, -1.0);
        }
    }
}

// act(z) and act'(z) (src/nn/cpu.rs).
fn activate(z: f32) -> vec2<f32> {
    switch g.act {
        case 1u: {
            return select(vec2<f32>(0.0, 0.0), vec2<f32>(z, 1.0), z > 0.0);
        }
        case 2u: {
            let h = 1.0 - 2.0 / (exp(clamp(2.0 * z, -87.0, 88.0)) + 1.0);
            return vec2<f32>(h, 1.0 - h * h);
        }
        default: {
            let s = 1.0 / (1.0 + exp(clamp(-z, -87.0, 88.0)));
            return vec2<f32>(z * s, s * (1.0 + z * (1.0 - s)));
        }
    }
}

// The time features of t at arena[off..] (src/nn/layout.rs).
fn write_time(off: u32, t: f32) {
    if (g.time_mode == 0u) {
        arena[off] = t;
        return;
    }
    for (var k = 0u; k < TIME_FREQUENCIES; k++) {
        var a = t * f32(1u << k);
        a = a - TAU * round(a / TAU);
        arena[off + k] = sin(a);
        arena[off + TIME_FREQUENCIES + k] = cos(a);
    }
}

// One network input row: the position, the time features, and the stored ones column.
fn write_input(row: u32, x: vec2<f32>, t: f32) {
    let off = g.x0_off + row * g.x0_stride;
    arena[off] = x.x;
    arena[off + 1u] = x.y;
    write_time(off + 2u, t);
}
