//! Pure maths: no GPU, no UI; compiles for wasm32. Reads side by side with MATH.md.

pub mod data;
pub mod marginal;
pub mod metrics;
pub mod path;
pub mod rng;
pub mod schedule;
