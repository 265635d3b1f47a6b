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
    let row = g.x0_off + i * (g.input_dim + 1u);
    arena[row] = x.x;
    arena[row + 1u] = x.y;
    write_time(row + 2u, t);
    arena[g.target_off + 2u * i] = tgt.x;
    arena[g.target_off + 2u * i + 1u] = tgt.y;
}

// ---- the matrix product ----------------------------------------------------------
// A workgroup of GEMM_WG x GEMM_WG invocations computes a tile of C; each invocation an
// 8 x 8 block (rows ly + GEMM_WG i, columns lx + GEMM_WG j) in sixteen vec4 registers,
// reading A and B straight from storage: on CPU-emulated devices this beats
// workgroup-memory tiling. The block is written out by hand: an indexed array would
// live in memory on some compilers. Loads clamp their row and column, so the inner
// loop has no branch; only the stores check the bounds.

const MODE_HIDDEN: u32 = 0u; // C = act(acc), D = act'(acc)
const MODE_MUL_D: u32 = 1u;  // C = acc * D
const MODE_STORE: u32 = 2u;  // C[chunk] = acc

fn store_one(m: u32, n: u32, chunk: u32, v: f32) {
    if (n >= gm.n) {
        return;
    }
    let at = m * gm.c_rs + n;
    let dat = m * gm.d_rs + n;
    switch gm.mode {
        case 0u: {
            let hd = activate(v);
            arena[gm.c_off + at] = hd.x;
            arena[gm.d_off + dat] = hd.y;
        }
        case 1u: {
            arena[gm.c_off + at] = v * arena[gm.d_off + dat];
        }
        default: {
            arena[gm.c_off + chunk * gm.c_chunk_stride + at] = v;
        }
    }
}

fn store_row(m: u32, n_base: u32, chunk: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (m >= gm.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        store_one(m, n_base + j * GEMM_WG, chunk, lo[j]);
        store_one(m, n_base + (j + 4u) * GEMM_WG, chunk, hi[j]);
    }
}

@compute @workgroup_size(GEMM_WG, GEMM_WG)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m_base = wg.y * GEMM_TILE + lid.y;
    let n_base = wg.x * GEMM_TILE + lid.x;
    let k_begin = wg.z * gm.k_chunk;
    let k_end = min(gm.k, k_begin + gm.k_chunk);
    let ra0 = gm.a_off + min(m_base + 0u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra1 = gm.a_off + min(m_base + 1u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra2 = gm.a_off + min(m_base + 2u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra3 = gm.a_off + min(m_base + 3u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra4 = gm.a_off + min(m_base + 4u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra5 = gm.a_off + min(m_base + 5u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra6 = gm.a_off + min(m_base + 6u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let ra7 = gm.a_off + min(m_base + 7u * GEMM_WG, gm.m - 1u) * gm.a_rs;
    let cb0 = gm.b_off + min(n_base + 0u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb1 = gm.b_off + min(n_base + 1u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb2 = gm.b_off + min(n_base + 2u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb3 = gm.b_off + min(n_base + 3u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb4 = gm.b_off + min(n_base + 4u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb5 = gm.b_off + min(n_base + 5u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb6 = gm.b_off + min(n_base + 6u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    let cb7 = gm.b_off + min(n_base + 7u * GEMM_WG, gm.n - 1u) * gm.b_cs;
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    for (var k = k_begin; k < k_end; k++) {
        let ak = k * gm.a_cs;
        let bk = k * gm.b_rs;
        let a0 = arena[ra0 + ak];
        let a1 = arena[ra1 + ak];
        let a2 = arena[ra2 + ak];
        let a3 = arena[ra3 + ak];
        let a4 = arena[ra4 + ak];
        let a5 = arena[ra5 + ak];
        let a6 = arena[ra6 + ak];
        let a7 = arena[ra7 + ak];
        let b0 = vec4<f32>(arena[cb0 + bk], arena[cb1 + bk], arena[cb2 + bk], arena[cb3 + bk]);
        let b1 = vec4<f32>(arena[cb4 + bk], arena[cb5 + bk], arena[cb6 + bk], arena[cb7 + bk]);
        c00 = fma(vec4<f32>(a0), b0, c00);
        c01 = fma(vec4<f32>(a0), b1, c01);
        c10 = fma(vec4<f32>(a1), b0, c10);
        c11 = fma(vec4<f32>(a1), b1, c11);
        c20 = fma(vec4<f32>(a2), b0, c20);
        c21 = fma(vec4<f32>(a2), b1, c21);
        c30 = fma(vec4<f32>(a3), b0, c30);
        c31 = fma(vec4<f32>(a3), b1, c31);
        c40 = fma(vec4<f32>(a4), b0, c40);
        c41 = fma(vec4<f32>(a4), b1, c41);
        c50 = fma(vec4<f32>(a5), b0, c50);
        c51 = fma(vec4<f32>(a5), b1, c51);
        c60 = fma(vec4<f32>(a6), b0, c60);
        c61 = fma(vec4<f32>(a6), b1, c61);
        c70 = fma(vec4<f32>(a7), b0, c70);
        c71 = fma(vec4<f32>(a7), b1, c71);
    }
    store_row(m_base + 0u * GEMM_WG, n_base, wg.z, c00, c01);
    store_row(m_base + 1u * GEMM_WG, n_base, wg.z, c10, c11);
    store_row(m_base + 2u * GEMM_WG, n_base, wg.z, c20, c21);
    store_row(m_base + 3u * GEMM_WG, n_base, wg.z, c30, c31);
    store_row(m_base + 4u * GEMM_WG, n_base, wg.z, c40, c41);
    store_row(m_base + 5u * GEMM_WG, n_base, wg.z, c50, c51);
    store_row(m_base + 6u * GEMM_WG, n_base, wg.z, c60, c61);
    store_row(m_base + 7u * GEMM_WG, n_base, wg.z, c70, c71);
}

// Small products (a side under 16): one invocation per output element
// and chunk, a plain dot product. Tiles of 64 would waste most of their work there.
@compute @workgroup_size(64)
fn gemm_small(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if (e >= gm.m * gm.n) {
        return;
    }
    let m = e / gm.n;
    let n = e % gm.n;
    let k_begin = gid.z * gm.k_chunk;
    let k_end = min(gm.k, k_begin + gm.k_chunk);
    let a0 = gm.a_off + m * gm.a_rs;
    let b0 = gm.b_off + n * gm.b_cs;
    var acc = 0.0;
    for (var k = k_begin; k < k_end; k++) {
        acc = fma(arena[a0 + k * gm.a_cs], arena[b0 + k * gm.b_rs], acc);
    }
    store_one(m, n, gid.z, acc);
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
