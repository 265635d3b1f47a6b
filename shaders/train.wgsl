// One training step, as a sequence of dispatches in one compute pass:
// sample_batch -> gemm (forward, per layer) -> loss_head -> loss_sum ->
// gemm (backward data and weight-gradient partials, per layer) -> adam -> advance.
//
// Shapes: B batch rows, I input features, H width. The weight gradients of a layer
// are written as per-chunk partial sums (chunks of rows along the batch); adam adds
// the chunks in a fixed order, so there are no float atomics and the sum does not
// depend on scheduling.

// ---- batch: t, z, eps -> x_t and the loss's target --------------------------------

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
    write_input(i, x, t);
    arena[g.target_off + 2u * i] = tgt.x;
    arena[g.target_off + 2u * i + 1u] = tgt.y;
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
