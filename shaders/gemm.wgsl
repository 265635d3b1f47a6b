// The matrix products of the network, shared by training and sampling.

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
const MODE_ACT: u32 = 3u;    // C = act(acc) (inference: no derivative kept)

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
        case 3u: {
            arena[gm.c_off + at] = activate(v).x;
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


