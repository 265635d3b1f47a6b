//! Assembles the WGSL source: a prelude of constants generated from the Rust side
//! (never typed twice), then the shader files.

use crate::core::rng::stream;
use crate::nn::layout::TIME_FREQUENCIES;

/// Losses kept on the device between readbacks (one per step).
pub const LOSS_RING: u32 = 1024;

const COMMON: (&str, &str) = ("common.wgsl", include_str!("../../shaders/common.wgsl"));
const RNG: (&str, &str) = ("rng.wgsl", include_str!("../../shaders/rng.wgsl"));
const GEMM: (&str, &str) = ("gemm.wgsl", include_str!("../../shaders/gemm.wgsl"));
const TRAIN: (&str, &str) = ("train.wgsl", include_str!("../../shaders/train.wgsl"));
const SAMPLE: (&str, &str) = ("sample.wgsl", include_str!("../../shaders/sample.wgsl"));

/// The particle-drawing shader (a render module on its own: no prelude needed).
pub const POINTS: &str = include_str!("../../shaders/points.wgsl");

/// The heatmap shader (a render module on its own).
pub const HEAT: &str = include_str!("../../shaders/heat.wgsl");

/// The files of the training module, in order.
pub const TRAINING_FILES: [(&str, &str); 4] = [COMMON, RNG, GEMM, TRAIN];
/// The files of the sampling module (particles, trajectories, fields), in order.
pub const SAMPLING_FILES: [(&str, &str); 4] = [COMMON, RNG, GEMM, SAMPLE];

/// The shape of the GEMM kernel: `wg x wg` invocations, each an 8 x 8 block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// Invocations per side of the workgroup.
    pub wg: u32,
}

impl GemmShape {
    /// Outputs per side of one invocation's block (fixed by the kernel's code).
    pub const BLOCK: u32 = 8;

    /// Output tile edge of one workgroup.
    pub fn tile(self) -> u32 {
        self.wg * Self::BLOCK
    }

    /// The variant for an adapter: 64 invocations for CPU-emulated devices (their
    /// lanes are few), 256 for real GPUs.
    pub fn for_adapter(software: bool) -> Self {
        GemmShape {
            wg: if software { 8 } else { 16 },
        }
    }
}

/// Constants shared with Rust, as WGSL.
pub fn prelude(gemm: GemmShape) -> String {
    format!(
        "const STREAM_BATCH: u32 = {}u;\n\
         const STREAM_BATCH_GMM: u32 = {}u;\n\
         const STREAM_PRIOR: u32 = {}u;\n\
         const STREAM_BROWNIAN: u32 = {}u;\n\
         const T_GUARD: f32 = {:?};\n\
         const TIME_FREQUENCIES: u32 = {}u;\n\
         const LOSS_RING: u32 = {}u;\n\
         const TAU: f32 = 6.283185307179586;\n\
         const HALF_PI: f32 = 1.5707963267948966;\n\
         const GEMM_WG: u32 = {}u;\n\
         const GEMM_TILE: u32 = {}u;\n",
        stream::BATCH,
        stream::BATCH_GMM,
        stream::PRIOR,
        stream::BROWNIAN,
        crate::core::path::T_GUARD,
        TIME_FREQUENCIES,
        LOSS_RING,
        gemm.wg,
        gemm.tile(),
    )
}

fn assemble(gemm: GemmShape, files: &[(&str, &str)]) -> String {
    let mut s = prelude(gemm);
    for (name, text) in files {
        s.push_str(&format!("\n// ---- {name}\n"));
        s.push_str(text);
    }
    s
}

/// The whole training module: prelude and files.
pub fn training_source(gemm: GemmShape) -> String {
    assemble(gemm, &TRAINING_FILES)
}

/// The whole sampling module: prelude and files.
pub fn sampling_source(gemm: GemmShape) -> String {
    assemble(gemm, &SAMPLING_FILES)
}
