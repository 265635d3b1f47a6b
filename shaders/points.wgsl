// Particles drawn straight from the sampler's buffer (no trip through the CPU): one
// instance per particle, a small square of two triangles.

struct View {
    // Data-space centre of the canvas.
    center: vec2<f32>,
    // Data units to clip units, per axis.
    scale: vec2<f32>,
    // Half the square's size in clip units.
    half_size: vec2<f32>,
    pad: vec2<f32>,
    color: vec4<f32>,
}

@group(0) @binding(0) var<uniform> view: View;
// The sampler's particles: xy is the position.
@group(0) @binding(1) var<storage, read> points: array<vec4<f32>>;

@vertex
fn vs(@builtin(vertex_index) v: u32, @builtin(instance_index) i: u32) -> @builtin(position) vec4<f32> {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0),
        vec2<f32>(1.0, -1.0),
        vec2<f32>(-1.0, 1.0),
        vec2<f32>(-1.0, 1.0),
        vec2<f32>(1.0, -1.0),
        vec2<f32>(1.0, 1.0),
    );
    let p = points[i].xy;
    let clip = (p - view.center) * view.scale + corners[v] * view.half_size;
    return vec4<f32>(clip, 0.0, 1.0);
}

@fragment
fn fs() -> @location(0) vec4<f32> {
    return view.color;
}
