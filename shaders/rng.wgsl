// Counter-based random numbers: the twin of src/core/rng.rs, integer for integer.

fn pcg4d(v_in: vec4<u32>) -> vec4<u32> {
    var v = v_in * 1664525u + 1013904223u;
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    v = v ^ (v >> vec4<u32>(16u));
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    return v;
}

// Uniform in (0, 1) from the top 23 bits.
fn uniform_open(w: u32) -> f32 {
    return (f32(w >> 9u) + 0.5) * (1.0 / 8388608.0);
}

fn box_muller(w0: u32, w1: u32) -> vec2<f32> {
    let r = sqrt(-2.0 * log(uniform_open(w0)));
    let th = TAU * uniform_open(w1);
    return vec2<f32>(r * cos(th), r * sin(th));
}

// High 32 bits of the 64-bit product a * b, from 16-bit halves (WGSL has no u64).
fn umulhi(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xffffu) + lo_hi;
    return hi_hi + (hi_lo >> 16u) + (cross >> 16u);
}

// Uniform integer in 0..n (multiply-shift).
fn index_below(w: u32, n: u32) -> u32 {
    return umulhi(w, n);
}
