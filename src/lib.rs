//! Flow Playground: watch a generative model learn. Flow matching and denoising score
//! matching on 2-D toy data, with exact marginals beside learned fields.

pub mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod core;
pub mod engine;
pub mod gpu;
pub mod nn;
