// One training step, as a sequence of dispatches in one compute pass:
// sample_batch -> gemm (forward, per layer) -> loss_head -> loss_sum ->
// gemm (backward data and weight-gradient partials, per layer) -> adam -> advance.
//
// Shapes: B batch rows, I input features, H width. The weight gradients of a layer
// are written as per-chunk partial sums (chunks of rows along the batch); adam adds
// the chunks in a fixed order, so there are no float atomics and the sum does not
// depend on scheduling.

// ---- batch: t, z, eps -> x_t and the loss's target --------------------------------

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

@compute @workgroup_size(64)
fn sample_batch(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= g.batch) {
        return;
    }
    let step = ctrl[0];
    let w = pcg4d(vec4<u32>(i, step, g.seed, STREAM_BATCH));
    let t = g.t_max * uniform_open(w.x);
    let comp = mixture[index_below(w.y, g.n_comp)];
    let eps = box_muller(w.z, w.w);
    var z = comp.xy;
    if (comp.z > 0.0) {
        let h = pcg4d(vec4<u32>(i, step, g.seed, STREAM_BATCH_GMM));
        z = z + comp.z * box_muller(h.x, h.y);
    }
    let c = schedule(t);
    let x = c.alpha * z + c.beta * eps;
    var tgt: vec2<f32>;
    switch g.loss_code {
        case 1u: {
            tgt = -eps / c.beta;
        }
        case 2u: {
            tgt = eps;
        }
        default: {
            tgt = c.alpha_dot * z + c.beta_dot * eps;
        }
    }
    let row = g.x0_off + i * g.input_dim;
    arena[row] = x.x;
    arena[row + 1u] = x.y;
    write_time(row + 2u, t);
    arena[g.target_off + 2u * i] = tgt.x;
    arena[g.target_off + 2u * i + 1u] = tgt.y;
}

// ---- the matrix product ----------------------------------------------------------
// A 16 x 16 workgroup computes a 64 x 64 tile of C, each invocation a 4 x 4 block
// (rows ly + 16 i, columns lx + 16 j) held in registers, reading A and B straight from
// storage: on CPU-emulated devices this beats workgroup-memory tiling.

const MODE_HIDDEN: u32 = 0u; // C = act(acc), D = act'(acc)
const MODE_MUL_D: u32 = 1u;  // C = acc * D
const MODE_STORE: u32 = 2u;  // C[chunk] = acc

fn load_a(m: u32, k: u32) -> f32 {
    if (m == gm.a_one_m || k == gm.a_one_k) {
        return 1.0;
    }
    return arena[gm.a_off + m * gm.a_rs + k * gm.a_cs];
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m_base = wg.y * 64u + lid.y;
    let n_base = wg.x * 64u + lid.x;
    let k_begin = wg.z * gm.k_chunk;
    let k_end = min(gm.k, k_begin + gm.k_chunk);
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k = k_begin; k < k_end; k++) {
        var a: array<f32, 4>;
        var b: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            let m = m_base + 16u * i;
            a[i] = 0.0;
            if (m < gm.m) {
                a[i] = load_a(m, k);
            }
            let n = n_base + 16u * i;
            b[i] = 0.0;
            if (n < gm.n) {
                b[i] = arena[gm.b_off + k * gm.b_rs + n * gm.b_cs];
            }
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m_base + 16u * i;
        if (m >= gm.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let n = n_base + 16u * j;
            if (n >= gm.n) {
                continue;
            }
            let v = acc[i * 4u + j];
            let at = m * gm.c_rs + n;
            switch gm.mode {
                case 0u: {
                    let hd = activate(v);
                    arena[gm.c_off + at] = hd.x;
                    arena[gm.d_off + at] = hd.y;
                }
                case 1u: {
                    arena[gm.c_off + at] = v * arena[gm.d_off + at];
                }
                default: {
                    arena[gm.c_off + wg.z * gm.c_chunk_stride + at] = v;
                }
            }
        }
    }
}

// ---- loss --------------------------------------------------------------------------

var<workgroup> partial: array<f32, 64>;

// Per row: the squared error, and dL/dy = 2 (y - target) / B. Per workgroup: the sum
// of its rows' losses / B, by a fixed-order tree.
@compute @workgroup_size(64)
fn loss_head(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let i = gid.x;
    var l = 0.0;
    if (i < g.batch) {
        let y = vec2<f32>(arena[g.y_off + 2u * i], arena[g.y_off + 2u * i + 1u]);
        let tg = vec2<f32>(arena[g.target_off + 2u * i], arena[g.target_off + 2u * i + 1u]);
        let r = y - tg;
        l = dot(r, r);
        let s = 2.0 / f32(g.batch);
        arena[g.dy_off + 2u * i] = s * r.x;
        arena[g.dy_off + 2u * i + 1u] = s * r.y;
    }
    partial[li] = l;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w >> 1u) {
        if (li < w) {
            partial[li] = partial[li] + partial[li + w];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        arena[g.lp_off + wid.x] = partial[0] / f32(g.batch);
    }
}

// The step's loss into the ring; a non-finite loss raises the divergence flag, after
// which adam and advance do nothing.
@compute @workgroup_size(1)
fn loss_sum() {
    var s = 0.0;
    for (var i = 0u; i < g.n_lp; i++) {
        s += arena[g.lp_off + i];
    }
    arena[g.ring_off + ctrl[0] % LOSS_RING] = s;
    if (!is_finite(s)) {
        ctrl[1] = 1u;
    }
}

// ---- Adam --------------------------------------------------------------------------

@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= g.n_params || ctrl[1] != 0u) {
        return;
    }
    var grad = 0.0;
    for (var c = 0u; c < g.n_chunks; c++) {
        grad += arena[g.partial_off + c * g.n_params + p];
    }
    let m = g.beta1 * arena[g.m_off + p] + (1.0 - g.beta1) * grad;
    let v = g.beta2 * arena[g.v_off + p] + (1.0 - g.beta2) * grad * grad;
    arena[g.m_off + p] = m;
    arena[g.v_off + p] = v;
    let c1 = 1.0 - arena[g.pow_off] * g.beta1;
    let c2 = 1.0 - arena[g.pow_off + 1u] * g.beta2;
    let w = arena[p] - g.lr * (m / c1) / (sqrt(v / c2) + g.adam_eps);
    arena[p] = w;
    arena[g.ema_off + p] = g.ema * arena[g.ema_off + p] + (1.0 - g.ema) * w;
}

@compute @workgroup_size(1)
fn advance() {
    if (ctrl[1] != 0u) {
        return;
    }
    ctrl[0] = ctrl[0] + 1u;
    arena[g.pow_off] = arena[g.pow_off] * g.beta1;
    arena[g.pow_off + 1u] = arena[g.pow_off + 1u] * g.beta2;
}
