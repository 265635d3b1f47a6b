//! The MLP's shape and where each parameter lives in the one flat buffer: the single
//! source of truth for the CPU reference and the shaders.
//!
//! Shapes (llm.c letters): `B` batch rows, `I` input features, `H` hidden width,
//! `L` hidden layers. Layer `l` maps `fan_in -> fan_out` as `Z = X W + b` with `X` of
//! shape `B x fan_in` (row-major), `W` of shape `fan_in x fan_out` stored row-major at
//! `w_offset`, and `b` of length `fan_out` at `b_offset`. Hidden layers apply the
//! activation; the last layer (`H -> 2`) is linear.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::core::rng::{Rng, stream};

/// Number of sinusoidal frequencies: the features are `sin(f_k t), cos(f_k t)`.
pub const TIME_FREQUENCIES: usize = 8;

/// The hidden activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `x * sigmoid(x)`.
    #[default]
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Every activation, in menu order.
    pub const ALL: [Activation; 3] = [Activation::Silu, Activation::Relu, Activation::Tanh];

    /// A small integer naming the activation for shaders.
    pub fn shader_code(self) -> u32 {
        match self {
            Self::Silu => 0,
            Self::Relu => 1,
            Self::Tanh => 2,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Silu => "silu",
            Self::Relu => "relu",
            Self::Tanh => "tanh",
        })
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "silu" => Ok(Self::Silu),
            "relu" => Ok(Self::Relu),
            "tanh" => Ok(Self::Tanh),
            _ => Err(format!(
                "unknown activation '{s}' (expected silu, relu or tanh)"
            )),
        }
    }
}

/// How time enters the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFeatures {
    /// `t` itself, one input.
    Raw,
    /// `sin(f_k t), cos(f_k t)` for `f_k = 2^k`, `k < TIME_FREQUENCIES`.
    #[default]
    Sinusoidal,
}

impl TimeFeatures {
    /// Number of inputs that time takes.
    pub fn count(self) -> usize {
        match self {
            Self::Raw => 1,
            Self::Sinusoidal => 2 * TIME_FREQUENCIES,
        }
    }

    /// Writes the time features of `t` into `out` (`count()` values).
    #[inline]
    pub fn write(self, t: f32, out: &mut [f32]) {
        match self {
            Self::Raw => out[0] = t,
            Self::Sinusoidal => {
                for k in 0..TIME_FREQUENCIES {
                    let a = time_angle(t, k);
                    out[k] = a.sin();
                    out[TIME_FREQUENCIES + k] = a.cos();
                }
            }
        }
    }
}

/// `2^k t` reduced to about `[-pi, pi]` (the shaders do the same: GPU `sin` is only
/// accurate there).
#[inline]
pub fn time_angle(t: f32, k: usize) -> f32 {
    use std::f32::consts::TAU;
    let a = t * (1u32 << k) as f32;
    a - TAU * (a / TAU).round()
}

impl fmt::Display for TimeFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Raw => "raw",
            Self::Sinusoidal => "sinusoidal",
        })
    }
}

impl FromStr for TimeFeatures {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Self::Raw),
            "sinusoidal" | "sin" => Ok(Self::Sinusoidal),
            _ => Err(format!(
                "unknown time features '{s}' (expected raw or sinusoidal)"
            )),
        }
    }
}

/// The architecture: what a user sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Hidden width `H`.
    pub width: usize,
    /// Number of hidden layers `L`.
    pub depth: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// How `t` enters.
    pub time: TimeFeatures,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            width: 128,
            depth: 3,
            activation: Activation::Silu,
            time: TimeFeatures::Sinusoidal,
        }
    }
}

/// One dense layer's place in the parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Inputs.
    pub fan_in: usize,
    /// Outputs.
    pub fan_out: usize,
    /// Offset of `W` (`fan_in x fan_out`, row-major).
    pub w_offset: usize,
    /// Offset of `b` (`fan_out`).
    pub b_offset: usize,
}

/// The MLP's layers and parameter offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The architecture this layout was made from.
    pub config: MlpConfig,
    /// `depth + 1` layers: `depth` hidden, then the linear head.
    pub layers: Vec<Layer>,
    /// Total parameter count.
    pub n_params: usize,
}

/// The largest width and depth accepted.
pub const MAX_WIDTH: usize = 1024;
/// See [`MAX_WIDTH`].
pub const MAX_DEPTH: usize = 8;

impl Layout {
    /// Lays out `config`. Width and depth must be at least 1.
    pub fn new(config: MlpConfig) -> Result<Self, String> {
        if config.width == 0 || config.width > MAX_WIDTH {
            return Err(format!("width must be in 1..={MAX_WIDTH}"));
        }
        if config.depth == 0 || config.depth > MAX_DEPTH {
            return Err(format!("depth must be in 1..={MAX_DEPTH}"));
        }
        let mut layers = Vec::with_capacity(config.depth + 1);
        let mut offset = 0;
        let mut fan_in = Self::input_dim_of(config);
        for l in 0..=config.depth {
            let fan_out = if l == config.depth { 2 } else { config.width };
            let w_offset = offset;
            let b_offset = w_offset + fan_in * fan_out;
            offset = b_offset + fan_out;
            layers.push(Layer {
                fan_in,
                fan_out,
                w_offset,
                b_offset,
            });
            fan_in = fan_out;
        }
        Ok(Layout {
            config,
            layers,
            n_params: offset,
        })
    }

    fn input_dim_of(config: MlpConfig) -> usize {
        2 + config.time.count()
    }

    /// Input features `I`: the position and the time features.
    pub fn input_dim(&self) -> usize {
        Self::input_dim_of(self.config)
    }

    /// Writes the input row of `(x, t)` into `row` (`input_dim()` values).
    #[inline]
    pub fn write_input(&self, x: [f32; 2], t: f32, row: &mut [f32]) {
        row[0] = x[0];
        row[1] = x[1];
        self.config.time.write(t, &mut row[2..]);
    }

    /// Multiply-adds of one forward pass for one row.
    pub fn macs_per_row(&self) -> usize {
        self.layers.iter().map(|l| l.fan_in * l.fan_out).sum()
    }

    /// Floating-point operations of one training step at batch `b`: forward, the
    /// backward data products (all but the first layer) and the weight products.
    pub fn train_flops(&self, b: usize) -> f64 {
        let fwd = self.macs_per_row() as f64;
        let first = (self.layers[0].fan_in * self.layers[0].fan_out) as f64;
        2.0 * b as f64 * (fwd + (fwd - first) + fwd)
    }

    /// PyTorch-style initial parameters: every weight and bias uniform in
    /// `(-1/sqrt(fan_in), 1/sqrt(fan_in))`, from `seed`.
    pub fn init_params(&self, seed: u32) -> Vec<f32> {
        let mut rng = Rng::new(seed, stream::INIT);
        let mut p = vec![0.0f32; self.n_params];
        for l in &self.layers {
            let bound = 1.0 / (l.fan_in as f32).sqrt();
            for v in &mut p[l.w_offset..l.b_offset + l.fan_out] {
                *v = rng.uniform_in(-bound, bound);
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_tile_the_buffer() {
        let layout = Layout::new(MlpConfig::default()).expect("valid");
        assert_eq!(layout.layers.len(), 4);
        assert_eq!(layout.input_dim(), 18);
        let mut expect = 0;
        for l in &layout.layers {
            assert_eq!(l.w_offset, expect);
            assert_eq!(l.b_offset, l.w_offset + l.fan_in * l.fan_out);
            expect = l.b_offset + l.fan_out;
        }
        assert_eq!(layout.n_params, expect);
        // 18*128+128 + 2*(128*128+128) + 128*2+2
        assert_eq!(layout.n_params, 2432 + 2 * 16512 + 258);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for (w, d) in [(0, 3), (128, 0), (MAX_WIDTH + 1, 1)] {
            let c = MlpConfig {
                width: w,
                depth: d,
                ..MlpConfig::default()
            };
            assert!(Layout::new(c).is_err());
        }
    }
}
