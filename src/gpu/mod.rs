//! GPU plumbing: devices, shader source, buffers.

pub mod context;
pub mod shaders;
