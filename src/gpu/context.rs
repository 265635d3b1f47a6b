//! The device: eframe's (the app) or one made here (tests, the command line).

use std::sync::{Arc, Mutex};

use thiserror::Error;

/// Why no GPU backend is available.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpuError {
    /// No adapter at all.
    #[error("no GPU adapter found")]
    NoAdapter,
    /// The adapter cannot run compute shaders (WebGL2 and GL devices).
    #[error("the adapter '{0}' cannot run compute shaders")]
    NoCompute(String),
    /// Device creation failed.
    #[error("could not create a device: {0}")]
    Device(String),
    /// The model does not fit the device's buffer limits.
    #[error("{0}")]
    TooLarge(String),
}

/// A device and queue with what was learnt about the adapter.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter name, backend and type.
    pub info: wgpu::AdapterInfo,
    /// The first fatal problem seen by [`GpuContext::watch`]'s handlers.
    health: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Wraps a device someone else made (eframe's). Checks that it can compute.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        downlevel: wgpu::DownlevelCapabilities,
    ) -> Result<Self, GpuError> {
        if !downlevel
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            || device.limits().max_compute_invocations_per_workgroup < 256
        {
            return Err(GpuError::NoCompute(info.name.clone()));
        }
        Ok(GpuContext {
            device,
            queue,
            info,
            health: Arc::new(Mutex::new(None)),
        })
    }

    /// Replaces wgpu's default reaction to a lost device or an uncaptured error (a
    /// panic) by a note that [`GpuContext::problem`] returns: the app and the command
    /// line then fall back or stop with a message. Tests of the kernels leave the
    /// default in place, so that any validation error fails them loudly.
    pub fn watch(&self) {
        let health = self.health.clone();
        self.device
            .set_device_lost_callback(move |reason, message| {
                let detail = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                note(
                    &health,
                    format!("the GPU device was lost ({reason:?}{detail})"),
                );
            });
        let health = self.health.clone();
        self.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let text = e.to_string();
                log::error!("GPU error: {text}");
                let first = text.lines().next().unwrap_or("").trim().to_string();
                note(&health, format!("GPU error: {first}"));
            }));
    }

    /// The first lost-device or uncaptured error since [`GpuContext::watch`]; once set,
    /// the device's results cannot be trusted.
    pub fn problem(&self) -> Option<String> {
        self.health.lock().ok().and_then(|h| h.clone())
    }

    /// Whether the adapter is a CPU emulation (lavapipe, SwiftShader, llvmpipe).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// A short description: "name (backend, type)".
    pub fn describe(&self) -> String {
        // Browsers keep the adapter's name to themselves.
        let name = match self.info.name.as_str() {
            "" if self.info.backend == wgpu::Backend::BrowserWebGpu => "browser's WebGPU adapter",
            "" => "unnamed adapter",
            n => n,
        };
        format!(
            "{name} ({:?}, {:?})",
            self.info.backend, self.info.device_type
        )
    }

    /// Makes a device of its own (native only), with `Limits::default()` or, with
    /// `adapter_limits`, all that the adapter offers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn headless(adapter_limits: bool) -> Result<Self, GpuError> {
        pollster::block_on(Self::headless_async(adapter_limits))
    }

    /// See [`GpuContext::headless`].
    pub async fn headless_async(adapter_limits: bool) -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|_| GpuError::NoAdapter)?;
        let info = adapter.get_info();
        let downlevel = adapter.get_downlevel_capabilities();
        let required_limits = if adapter_limits {
            adapter.limits()
        } else {
            wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("flow-playground headless"),
                required_limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        Self::from_device(device, queue, info, downlevel)
    }
}

/// Copies `bytes` bytes of `buf` from `offset` into a staging buffer and waits for them
/// (native only: tests, the command line, and short parameter snapshots).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_buffer_blocking(
    ctx: &GpuContext,
    buf: &wgpu::Buffer,
    offset: u64,
    bytes: u64,
) -> Vec<u8> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("blocking readback"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buf, offset, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |_| {});
    let _ = ctx.device.poll(wgpu::PollType::wait_indefinitely());
    let out = staging
        .get_mapped_range(..)
        .map(|v| v[..bytes as usize].to_vec())
        .unwrap_or_else(|_| vec![0; bytes as usize]);
    staging.unmap();
    out
}

/// The data's mixture as a storage buffer of `(mean.x, mean.y, std, 0)`.
pub fn mixture_buffer(device: &wgpu::Device, mixture: &crate::core::data::Mixture) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    let comps: Vec<[f32; 4]> = mixture
        .components
        .iter()
        .map(|c| [c.mean[0], c.mean[1], c.std, 0.0])
        .collect();
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("mixture"),
        contents: bytemuck::cast_slice(&comps),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

/// A copy of part of a buffer on its way back to the host, without waiting: start it,
/// then ask each frame whether it has arrived (`device.poll(Poll)` natively; the
/// browser's event loop on the web).
pub struct AsyncRead {
    buffer: wgpu::Buffer,
    state: std::sync::Arc<std::sync::atomic::AtomicU8>,
    bytes: u64,
}

impl AsyncRead {
    /// Copies `bytes` bytes of `src` from `offset` and starts mapping them.
    pub fn start(ctx: &GpuContext, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Self {
        use std::sync::atomic::Ordering;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("async readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &buffer, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        let state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
        let s = state.clone();
        buffer.map_async(wgpu::MapMode::Read, .., move |r| {
            s.store(if r.is_ok() { 1 } else { 2 }, Ordering::Release);
        });
        AsyncRead {
            buffer,
            state,
            bytes,
        }
    }

    /// Whether the data has arrived (or the read failed).
    pub fn arrived(&self) -> bool {
        self.state.load(std::sync::atomic::Ordering::Acquire) != 0
    }

    /// The data, once arrived: `Some(Ok)`; `Some(Err)` if the read failed; `None` while
    /// it is still on its way.
    pub fn take(&self) -> Option<Result<Vec<u8>, String>> {
        match self.state.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            1 => {
                let out = self
                    .buffer
                    .get_mapped_range(..)
                    .map(|v| v[..self.bytes as usize].to_vec())
                    .map_err(|e| e.to_string());
                self.buffer.unmap();
                Some(out)
            }
            _ => Some(Err("the GPU readback failed".into())),
        }
    }
}

fn note(health: &Mutex<Option<String>>, text: String) {
    if let Ok(mut h) = health.lock()
        && h.is_none()
    {
        *h = Some(text);
    }
}
