//! The network: its parameter layout (shared with the shaders) and the CPU reference.

pub mod cpu;
pub mod layout;
