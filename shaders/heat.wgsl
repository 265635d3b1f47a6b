// The exact density heatmap drawn straight from the sampler's field buffer: one quad
// over the grid, each fragment interpolating log p_t between the four nearest cells and
// normalising by the grid's maximum (written by `field_max`).

struct Heat {
    // Data-space centre of the canvas and data units to clip units, per axis.
    center: vec2<f32>,
    scale: vec2<f32>,
    // The grid: lower-left corner, cell edge, cells per side.
    lo: vec2<f32>,
    cell: f32,
    n: u32,
}

@group(0) @binding(0) var<uniform> heat: Heat;
// Three vec4 per grid point, (log p_t, ...) third; the maximum after the last point.
@group(0) @binding(1) var<storage, read> field: array<vec4<f32>>;

struct VOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) data: vec2<f32>,
}

@vertex
fn vs(@builtin(vertex_index) v: u32) -> VOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0),
        vec2<f32>(1.0, 0.0),
        vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0),
        vec2<f32>(1.0, 0.0),
        vec2<f32>(1.0, 1.0),
    );
    let data = heat.lo + corners[v] * heat.cell * f32(heat.n);
    return VOut(vec4<f32>((data - heat.center) * heat.scale, 0.0, 1.0), data);
}

fn log_p(ix: i32, iy: i32) -> f32 {
    let n = i32(heat.n);
    let x = clamp(ix, 0, n - 1);
    let y = clamp(iy, 0, n - 1);
    return field[3u * u32(y * n + x) + 2u].x;
}

// Dark blue -> teal -> green -> yellow, as the CPU heatmap (src/app/canvas.rs).
fn colormap(v: f32) -> vec3<f32> {
    let stops = array<vec3<f32>, 4>(
        vec3<f32>(13.0, 8.0, 48.0),
        vec3<f32>(33.0, 120.0, 140.0),
        vec3<f32>(120.0, 200.0, 90.0),
        vec3<f32>(250.0, 230.0, 60.0),
    );
    let x = clamp(v, 0.0, 1.0) * 3.0;
    let i = min(u32(floor(x)), 2u);
    let f = x - f32(i);
    return mix(stops[i], stops[i + 1u], f) / 255.0;
}

@fragment
fn fs(in: VOut) -> @location(0) vec4<f32> {
    let q = (in.data - heat.lo) / heat.cell - vec2<f32>(0.5);
    let i = vec2<i32>(floor(q));
    let f = q - floor(q);
    let top = field[3u * heat.n * heat.n].x;
    let p00 = exp(log_p(i.x, i.y) - top);
    let p10 = exp(log_p(i.x + 1, i.y) - top);
    let p01 = exp(log_p(i.x, i.y + 1) - top);
    let p11 = exp(log_p(i.x + 1, i.y + 1) - top);
    let p = mix(mix(p00, p10, f.x), mix(p01, p11, f.x), f.y);
    return vec4<f32>(colormap(sqrt(p)), 1.0);
}
