//! Assembles the WGSL source: a prelude of constants generated from the Rust side
//! (never typed twice), then the shader files.

use crate::core::rng::stream;
use crate::nn::layout::TIME_FREQUENCIES;

/// Losses kept on the device between readbacks (one per step).
pub const LOSS_RING: u32 = 1024;

/// The shader files, in the order they are concatenated.
pub const FILES: [(&str, &str); 3] = [
    ("common.wgsl", include_str!("../../shaders/common.wgsl")),
    ("rng.wgsl", include_str!("../../shaders/rng.wgsl")),
    ("train.wgsl", include_str!("../../shaders/train.wgsl")),
];

/// Constants shared with Rust, as WGSL.
pub fn prelude() -> String {
    format!(
        "const STREAM_BATCH: u32 = {}u;\n\
         const STREAM_BATCH_GMM: u32 = {}u;\n\
         const TIME_FREQUENCIES: u32 = {}u;\n\
         const LOSS_RING: u32 = {}u;\n\
         const TAU: f32 = 6.283185307179586;\n\
         const HALF_PI: f32 = 1.5707963267948966;\n",
        stream::BATCH,
        stream::BATCH_GMM,
        TIME_FREQUENCIES,
        LOSS_RING,
    )
}

/// The whole training module: prelude and files.
pub fn training_source() -> String {
    let mut s = prelude();
    for (name, text) in FILES {
        s.push_str(&format!("\n// ---- {name}\n"));
        s.push_str(text);
    }
    s
}
