//! GPU plumbing: devices, shader source, buffers.

pub mod binding;
pub mod context;
pub mod shaders;
