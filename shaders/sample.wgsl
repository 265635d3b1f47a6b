// Particles, trajectories and fields (src/engine/sampler.rs is the CPU twin).
//
// Particles go from N(0, I) at t = 0 to the data at t = 1. The network is evaluated
// in chunks of rows: features -> gemm (per layer) -> integrate, the same scratch rows
// reused for each chunk. ctrl[0] is the integration step k, so several steps can be
// queued in one submit and nothing is read back per step.

struct Sample {
    n: u32,
    row0: u32,
    rows: u32,
    steps: u32,
    kind: u32,
    stage: u32,
    sigma: f32,
    sigma_mode: u32,
    traj_m: u32,
    grid_nx: u32,
    grid_ny: u32,
    pad0: u32,
    grid_lo_x: f32,
    grid_lo_y: f32,
    grid_cell: f32,
    t_field: f32,
}

@group(0) @binding(5) var<uniform> sp: Sample;
// xy: position; zw: Heun's predictor.
@group(0) @binding(6) var<storage, read_write> particles: array<vec4<f32>>;
// Heun's first drift.
@group(0) @binding(7) var<storage, read_write> aux: array<vec2<f32>>;
// Positions of the first traj_m particles after every step: (steps + 1) x traj_m.
@group(0) @binding(8) var<storage, read_write> traj: array<vec2<f32>>;
// Three vec4 per grid point: learned (u, s), exact (u, s), (log p_t, 0, 0, 0).
@group(0) @binding(9) var<storage, read_write> field: array<vec4<f32>>;
// Particle counts per grid cell.
@group(0) @binding(10) var<storage, read_write> hist: array<atomic<u32>>;

const KIND_ODE: u32 = 0u;
const KIND_HEUN: u32 = 1u;
const KIND_SDE: u32 = 2u;
const STAGE_MAIN: u32 = 0u;
const STAGE_PRED: u32 = 1u;
const STAGE_GRID: u32 = 2u;

struct FieldScore {
    u: vec2<f32>,
    s: vec2<f32>,
}

// The vector field and score a network output stands for (src/core/path.rs).
fn field_and_score(c: Coeffs, x: vec2<f32>, out: vec2<f32>) -> FieldScore {
    switch g.loss_code {
        case 0u: {
            let d = 1.0 / (c.beta * (c.beta * c.alpha_dot - c.alpha * c.beta_dot));
            return FieldScore(out, (c.alpha * out - c.alpha_dot * x) * d);
        }
        default: {
            var s = out;
            if (g.loss_code == 2u) {
                s = -out / c.beta;
            }
            let a = c.beta * c.beta * c.alpha_dot / c.alpha - c.beta_dot * c.beta;
            let b = c.alpha_dot / c.alpha;
            return FieldScore(a * s + b * x, s);
        }
    }
}

fn grid_point(i: u32) -> vec2<f32> {
    let ix = i % sp.grid_nx;
    let iy = i / sp.grid_nx;
    return vec2<f32>(
        sp.grid_lo_x + (f32(ix) + 0.5) * sp.grid_cell,
        sp.grid_lo_y + (f32(iy) + 0.5) * sp.grid_cell,
    );
}

fn guarded(t: f32) -> f32 {
    return clamp(t, T_GUARD, 1.0 - T_GUARD);
}

@compute @workgroup_size(64)
fn prior(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i == 0u) {
        ctrl[0] = 0u;
    }
    if (i >= sp.n) {
        return;
    }
    let w = pcg4d(vec4<u32>(i, 0u, g.seed, STREAM_PRIOR));
    let x = box_muller(w.x, w.y);
    particles[i] = vec4<f32>(x, x);
    if (i < sp.traj_m) {
        traj[i] = x;
    }
}

// The network inputs of one chunk: particles, Heun predictors or grid points.
@compute @workgroup_size(64)
fn features(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= sp.rows) {
        return;
    }
    let i = sp.row0 + r;
    let h = 1.0 / f32(sp.steps);
    switch sp.stage {
        case 2u: {
            write_input(r, grid_point(i), guarded(sp.t_field));
        }
        case 1u: {
            write_input(r, particles[i].zw, guarded(f32(ctrl[0]) * h + h));
        }
        default: {
            write_input(r, particles[i].xy, guarded(f32(ctrl[0]) * h));
        }
    }
}

// One Euler, Heun-stage or Euler-Maruyama update from the chunk's network outputs.
@compute @workgroup_size(64)
fn integrate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= sp.rows) {
        return;
    }
    let i = sp.row0 + r;
    let k = ctrl[0];
    let h = 1.0 / f32(sp.steps);
    let t = f32(k) * h;
    let p = particles[i];
    let pred = sp.stage == STAGE_PRED;
    let x_eval = select(p.xy, p.zw, pred);
    let tg = guarded(select(t, t + h, pred));
    let out = vec2<f32>(arena[g.y_off + 2u * r], arena[g.y_off + 2u * r + 1u]);
    let fs = field_and_score(schedule(tg), x_eval, out);
    var sigma = 0.0;
    if (sp.kind == KIND_SDE) {
        sigma = sp.sigma;
        if (sp.sigma_mode == 1u) {
            sigma = sp.sigma * schedule(t).beta;
        }
    }
    let drift = fs.u + 0.5 * sigma * sigma * fs.s;
    var x: vec2<f32>;
    switch sp.kind {
        case 1u: {
            if (!pred) {
                aux[i] = drift;
                particles[i] = vec4<f32>(p.xy, p.xy + h * drift);
                return;
            }
            x = p.xy + 0.5 * h * (aux[i] + drift);
        }
        case 2u: {
            let w = pcg4d(vec4<u32>(i, k, g.seed, STREAM_BROWNIAN));
            x = p.xy + h * drift + sigma * sqrt(h) * box_muller(w.x, w.y);
        }
        default: {
            x = p.xy + h * drift;
        }
    }
    particles[i] = vec4<f32>(x, x);
    if (i < sp.traj_m) {
        traj[(k + 1u) * sp.traj_m + i] = x;
    }
}

@compute @workgroup_size(1)
fn advance_particles() {
    if (ctrl[0] < sp.steps) {
        ctrl[0] = ctrl[0] + 1u;
    }
}

// The learned field and score at the chunk's grid points.
@compute @workgroup_size(64)
fn grid_store(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= sp.rows) {
        return;
    }
    let i = sp.row0 + r;
    let out = vec2<f32>(arena[g.y_off + 2u * r], arena[g.y_off + 2u * r + 1u]);
    let fs = field_and_score(schedule(guarded(sp.t_field)), grid_point(i), out);
    field[3u * i] = vec4<f32>(fs.u, fs.s);
}

// Exact marginal density, field and score of the mixture (src/core/marginal.rs),
// with a running log-sum-exp.
@compute @workgroup_size(64)
fn exact_marginal(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= sp.grid_nx * sp.grid_ny) {
        return;
    }
    let x = grid_point(i);
    let c = schedule(clamp(sp.t_field, 0.0, 1.0 - 1e-6));
    let b2 = c.beta * c.beta;
    var m = -3.0e38;
    var total = 0.0;
    var acc_s = vec2<f32>(0.0);
    var acc_u = vec2<f32>(0.0);
    for (var k = 0u; k < g.n_comp; k++) {
        let comp = mixture[k];
        let s2 = comp.z * comp.z;
        let v = c.alpha * c.alpha * s2 + b2;
        let d = x - c.alpha * comp.xy;
        let logw = -dot(d, d) / (2.0 * v) - log(TAU * v);
        let score = -d / v;
        let ez = comp.xy + c.alpha * s2 * d / v;
        let u = c.alpha_dot * ez + c.beta_dot * c.beta * d / v;
        if (logw > m) {
            let r = exp(m - logw);
            total *= r;
            acc_s *= r;
            acc_u *= r;
            m = logw;
        }
        let w = exp(logw - m);
        total += w;
        acc_s += w * score;
        acc_u += w * u;
    }
    field[3u * i + 1u] = vec4<f32>(acc_u / total, acc_s / total);
    field[3u * i + 2u] = vec4<f32>(m + log(total) - log(f32(g.n_comp)), 0.0, 0.0, 0.0);
}

// Counts particles per grid cell (outside the grid: not counted).
@compute @workgroup_size(64)
fn histogram(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= sp.n) {
        return;
    }
    let q = (particles[i].xy - vec2<f32>(sp.grid_lo_x, sp.grid_lo_y)) / sp.grid_cell;
    if (q.x < 0.0 || q.y < 0.0 || q.x >= f32(sp.grid_nx) || q.y >= f32(sp.grid_ny)) {
        return;
    }
    atomicAdd(&hist[u32(q.y) * sp.grid_nx + u32(q.x)], 1u);
}

var<workgroup> best: array<f32, 256>;

// The largest log p_t on the grid, into the vec4 after the last grid point (so the
// heatmap can be normalised on the device).
@compute @workgroup_size(256)
fn field_max(@builtin(local_invocation_index) li: u32) {
    let n = sp.grid_nx * sp.grid_ny;
    var m = -3.0e38;
    for (var i = li; i < n; i += 256u) {
        m = max(m, field[3u * i + 2u].x);
    }
    best[li] = m;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (li < w) {
            best[li] = max(best[li], best[li + w]);
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        field[3u * n] = vec4<f32>(best[0], 0.0, 0.0, 0.0);
    }
}
