//! The GPU backend: the training step of [`super::cpu`] as WGSL compute dispatches
//! (`shaders/train.wgsl`), over one arena buffer laid out by [`Offsets`].
//!
//! Several steps go into one submit; the losses come back through a ring of mapped
//! staging buffers (`map_async`), so nothing ever waits on the GPU except the
//! explicitly blocking helpers meant for tests and the command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::core::data::DataSet;
use crate::core::path;
use crate::gpu::binding::{self, Slot};
use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::shaders::{self, GemmShape, LOSS_RING};
use crate::nn::layout::{Layout, TimeFeatures};

use super::{EngineError, TrainConfig};

/// Rows per weight-gradient chunk: each chunk writes its own partial gradient.
pub const CHUNK_ROWS: u32 = 128;
/// Uniform slots are this far apart (the default dynamic-offset alignment).
const SLOT: u64 = 256;
/// Staging buffers in the readback ring.
const READBACKS: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct Globals {
    pub(crate) seed: u32,
    pub(crate) batch: u32,
    pub(crate) loss_code: u32,
    pub(crate) schedule_code: u32,
    pub(crate) poly_k: f32,
    pub(crate) t_max: f32,
    pub(crate) n_comp: u32,
    pub(crate) input_dim: u32,
    pub(crate) time_mode: u32,
    pub(crate) n_params: u32,
    pub(crate) n_chunks: u32,
    pub(crate) act: u32,
    pub(crate) lr: f32,
    pub(crate) beta1: f32,
    pub(crate) beta2: f32,
    pub(crate) adam_eps: f32,
    pub(crate) ema: f32,
    pub(crate) x0_off: u32,
    pub(crate) target_off: u32,
    pub(crate) y_off: u32,
    pub(crate) dy_off: u32,
    pub(crate) lp_off: u32,
    pub(crate) n_lp: u32,
    pub(crate) ring_off: u32,
    pub(crate) m_off: u32,
    pub(crate) v_off: u32,
    pub(crate) ema_off: u32,
    pub(crate) partial_off: u32,
    pub(crate) pow_off: u32,
    pub(crate) x0_stride: u32,
    pub(crate) pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct GemmParams {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) mode: u32,
    pub(crate) a_off: u32,
    pub(crate) a_rs: u32,
    pub(crate) a_cs: u32,
    pub(crate) d_rs: u32,
    pub(crate) b_off: u32,
    pub(crate) b_rs: u32,
    pub(crate) b_cs: u32,
    pub(crate) c_rs: u32,
    pub(crate) c_off: u32,
    pub(crate) d_off: u32,
    pub(crate) k_chunk: u32,
    pub(crate) c_chunk_stride: u32,
}

pub(crate) const MODE_HIDDEN: u32 = 0;
pub(crate) const MODE_MUL_D: u32 = 1;
pub(crate) const MODE_STORE: u32 = 2;
pub(crate) const MODE_ACT: u32 = 3;

/// Row stride of a stored activation of `width` values: the values, a column of ones
/// (the bias trick), padded to a multiple of 4 floats so rows can be read as `vec4`.
pub fn act_stride(width: usize) -> usize {
    (width + 1).div_ceil(4) * 4
}

/// Where everything lives in the arena, in `f32` elements.
#[derive(Clone, Debug, Default)]
pub struct Offsets {
    /// Adam's first moments.
    pub m: usize,
    /// Adam's second moments.
    pub v: usize,
    /// The parameter average.
    pub ema: usize,
    /// `beta1^t, beta2^t`.
    pub pow: usize,
    /// Per-chunk gradient partials (`n_chunks x n_params`).
    pub partial: usize,
    /// The batch input `X_0` (`B` rows of [`act_stride`]`(I)`: values, then ones).
    pub x0: usize,
    /// Each layer's output: hidden `X_l` (`B` rows of [`act_stride`]`(H)`), then the
    /// network output (`B x 2`).
    pub h: Vec<usize>,
    /// Each hidden layer's `act'(Z)`.
    pub d: Vec<usize>,
    /// Targets (`B x 2`).
    pub target: usize,
    /// Two gradient buffers (`B x max width`).
    pub dz: [usize; 2],
    /// Per-workgroup loss partials.
    pub lp: usize,
    /// The loss ring.
    pub ring: usize,
    /// Total length.
    pub len: usize,
}

impl Offsets {
    fn new(layout: &Layout, batch: usize, n_chunks: usize, n_lp: usize) -> Self {
        let p = layout.n_params;
        let mut at = 0usize;
        let mut take = |n: usize| {
            let o = at;
            // Keep every region 16-byte aligned.
            at += n.div_ceil(4) * 4;
            o
        };
        let _params = take(p);
        let m = take(p);
        let v = take(p);
        let ema = take(p);
        let pow = take(2);
        let partial = take(n_chunks * p);
        let x0 = take(batch * act_stride(layout.input_dim()));
        let mut h = Vec::new();
        let mut d = Vec::new();
        let last = layout.layers.len() - 1;
        for (l, layer) in layout.layers.iter().enumerate() {
            if l < last {
                h.push(take(batch * act_stride(layer.fan_out)));
                d.push(take(batch * layer.fan_out));
            } else {
                h.push(take(batch * layer.fan_out));
            }
        }
        let widest = layout
            .layers
            .iter()
            .map(|l| l.fan_in.max(l.fan_out))
            .max()
            .unwrap_or(2);
        let target = take(batch * 2);
        let dz = [take(batch * widest), take(batch * widest)];
        let lp = take(n_lp);
        let ring = take(LOSS_RING as usize);
        Offsets {
            m,
            v,
            ema,
            pow,
            partial,
            x0,
            h,
            d,
            target,
            dz,
            lp,
            ring,
            len: at,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    SampleBatch,
    Gemm,
    GemmSmall,
    LossHead,
    LossSum,
    Adam,
    Advance,
}

#[derive(Clone, Copy, Debug)]
struct Dispatch {
    kernel: Kernel,
    slot: u32,
    groups: [u32; 3],
}

struct Pipelines {
    sample_batch: wgpu::ComputePipeline,
    gemm: wgpu::ComputePipeline,
    gemm_small: wgpu::ComputePipeline,
    loss_head: wgpu::ComputePipeline,
    loss_sum: wgpu::ComputePipeline,
    adam: wgpu::ComputePipeline,
    advance: wgpu::ComputePipeline,
}

impl Pipelines {
    fn get(&self, k: Kernel) -> &wgpu::ComputePipeline {
        match k {
            Kernel::SampleBatch => &self.sample_batch,
            Kernel::Gemm => &self.gemm,
            Kernel::GemmSmall => &self.gemm_small,
            Kernel::LossHead => &self.loss_head,
            Kernel::LossSum => &self.loss_sum,
            Kernel::Adam => &self.adam,
            Kernel::Advance => &self.advance,
        }
    }
}

/// The shader module and pipelines, which depend only on the device.
pub struct TrainKernels {
    layout: wgpu::BindGroupLayout,
    pipelines: Pipelines,
    gemm: GemmShape,
}

impl TrainKernels {
    /// Compiles the training module and its six pipelines.
    pub fn new(device: &wgpu::Device, gemm: GemmShape) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("train.wgsl"),
            source: wgpu::ShaderSource::Wgsl(shaders::training_source(gemm).into()),
        });
        let layout = binding::layout(
            device,
            "train bindings",
            &[
                Slot::Storage,
                Slot::Storage,
                Slot::ReadOnly,
                Slot::Uniform,
                Slot::UniformDynamic,
            ],
        );
        let make = binding::pipelines(device, "train pipeline layout", &module, &layout);
        TrainKernels {
            pipelines: Pipelines {
                sample_batch: make("sample_batch"),
                gemm: make("gemm"),
                gemm_small: make("gemm_small"),
                loss_head: make("loss_head"),
                loss_sum: make("loss_sum"),
                adam: make("adam"),
                advance: make("advance"),
            },
            layout,
            gemm,
        }
    }
}

struct Readback {
    buffer: wgpu::Buffer,
    /// 0 idle, 1 mapping, 2 mapped, 3 failed.
    state: Arc<AtomicU8>,
}

/// The GPU trainer: buffers, the per-step dispatch plan and the readback ring.
pub struct GpuTrainer {
    ctx: GpuContext,
    kernels: TrainKernels,
    config: TrainConfig,
    layout: Layout,
    offsets: Offsets,
    globals: Globals,
    arena: wgpu::Buffer,
    ctrl: wgpu::Buffer,
    globals_buf: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    plan: Vec<Dispatch>,
    gemm_shapes: Vec<[u32; 3]>,
    readbacks: Vec<Readback>,
    steps_submitted: u64,
    steps_seen: u64,
    losses: Vec<f32>,
    diverged: Option<EngineError>,
}

impl GpuTrainer {
    /// Uploads `data` and `params` (or a fresh initialisation from the config's seed).
    pub fn new(
        ctx: GpuContext,
        config: TrainConfig,
        data: &DataSet,
        params: Option<&[f32]>,
    ) -> Result<Self, GpuTrainError> {
        config.validate()?;
        let layout = Layout::new(config.mlp).map_err(EngineError::Invalid)?;
        let device = &ctx.device;
        let b = config.batch;
        let n_chunks = b.div_ceil(CHUNK_ROWS as usize);
        let n_lp = b.div_ceil(64);
        let offsets = Offsets::new(&layout, b, n_chunks, n_lp);
        let bytes = offsets.len as u64 * 4;
        let limits = device.limits();
        let max = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if bytes > max {
            return Err(GpuError::TooLarge(format!(
                "the GPU engine needs {} MiB for batch {b} at this size; the device allows {} MiB",
                bytes >> 20,
                max >> 20
            ))
            .into());
        }
        let init = layout.init_params(config.seed);
        let params = params.unwrap_or(&init);
        if params.len() != layout.n_params {
            return Err(
                EngineError::Invalid("parameter count does not match the layout".into()).into(),
            );
        }

        // The arena: parameters, moments and the average start as the CPU's do.
        let mut host = vec![0.0f32; offsets.len];
        host[..layout.n_params].copy_from_slice(params);
        // The column of ones after every input and hidden activation row.
        for (l, layer) in layout.layers.iter().enumerate() {
            let start = if l == 0 { offsets.x0 } else { offsets.h[l - 1] };
            let width = layer.fan_in;
            for r in 0..b {
                host[start + r * act_stride(width) + width] = 1.0;
            }
        }
        host[offsets.ema..offsets.ema + layout.n_params].copy_from_slice(params);
        host[offsets.pow] = 1.0;
        host[offsets.pow + 1] = 1.0;
        let arena = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("arena"),
            contents: bytemuck::cast_slice(&host),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        });
        let ctrl = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ctrl"),
            contents: bytemuck::cast_slice(&[0u32; 4]),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        });
        let mixture = crate::gpu::context::mixture_buffer(device, &data.mixture);

        let (schedule_code, poly_k) = config.schedule.shader_code();
        let adam = config.adam();
        let globals = Globals {
            seed: config.seed,
            batch: b as u32,
            loss_code: config.loss.shader_code(),
            schedule_code,
            poly_k,
            t_max: path::t_max(config.loss, config.schedule),
            n_comp: data.mixture.len() as u32,
            input_dim: layout.input_dim() as u32,
            time_mode: match config.mlp.time {
                TimeFeatures::Raw => 0,
                TimeFeatures::Sinusoidal => 1,
            },
            n_params: layout.n_params as u32,
            n_chunks: n_chunks as u32,
            act: config.mlp.activation.shader_code(),
            lr: adam.lr,
            beta1: adam.beta1,
            beta2: adam.beta2,
            adam_eps: adam.eps,
            ema: config.ema,
            x0_off: offsets.x0 as u32,
            target_off: offsets.target as u32,
            y_off: *offsets.h.last().unwrap_or(&0) as u32,
            dy_off: offsets.dz[0] as u32,
            lp_off: offsets.lp as u32,
            n_lp: n_lp as u32,
            ring_off: offsets.ring as u32,
            m_off: offsets.m as u32,
            v_off: offsets.v as u32,
            ema_off: offsets.ema as u32,
            partial_off: offsets.partial as u32,
            pow_off: offsets.pow as u32,
            x0_stride: act_stride(layout.input_dim()) as u32,
            pad: [0; 2],
        };
        let globals_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("globals"),
            contents: bytemuck::bytes_of(&globals),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });

        let gemm_shape = GemmShape::for_adapter(ctx.is_software());
        let (plan, slots) = make_plan(&layout, &offsets, b, n_chunks, n_lp, gemm_shape.tile());
        let gemm_shapes: Vec<[u32; 3]> = slots.iter().map(|s| [s.m, s.n, s.k]).collect();
        let mut slot_bytes = vec![0u8; slots.len().max(1) * SLOT as usize];
        for (i, s) in slots.iter().enumerate() {
            let at = i * SLOT as usize;
            slot_bytes[at..at + size_of::<GemmParams>()].copy_from_slice(bytemuck::bytes_of(s));
        }
        let gemm_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("gemm slots"),
            contents: &slot_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });

        let kernels = TrainKernels::new(device, gemm_shape);
        let bind_group = binding::bind_group(
            device,
            "train bind group",
            &kernels.layout,
            vec![
                arena.as_entire_binding(),
                ctrl.as_entire_binding(),
                mixture.as_entire_binding(),
                globals_buf.as_entire_binding(),
                binding::window(&gemm_buf, size_of::<GemmParams>()),
            ],
        );
        let readbacks = (0..READBACKS)
            .map(|i| Readback {
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("loss readback {i}")),
                    size: 16 + LOSS_RING as u64 * 4,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(AtomicU8::new(0)),
            })
            .collect();
        Ok(GpuTrainer {
            ctx,
            kernels,
            config,
            layout,
            offsets,
            globals,
            arena,
            ctrl,
            globals_buf,
            bind_group,
            plan,
            gemm_shapes,
            readbacks,
            steps_submitted: 0,
            steps_seen: 0,
            losses: Vec::new(),
            diverged: None,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The device context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The GEMM kernel variant in use.
    pub fn gemm_shape(&self) -> GemmShape {
        self.kernels.gemm
    }

    /// Steps encoded so far (not necessarily finished).
    pub fn steps_submitted(&self) -> u64 {
        self.steps_submitted
    }

    /// Steps whose loss has come back.
    pub fn steps_seen(&self) -> u64 {
        self.steps_seen
    }

    /// Changes the learning rate and the EMA decay (applies from the next submit).
    pub fn set_live(&mut self, lr: f32, ema: f32) -> Result<(), EngineError> {
        TrainConfig {
            lr,
            ema,
            ..self.config
        }
        .validate()?;
        self.config.lr = lr;
        self.config.ema = ema;
        self.globals.lr = lr;
        self.globals.ema = ema;
        self.ctx
            .queue
            .write_buffer(&self.globals_buf, 0, bytemuck::bytes_of(&self.globals));
        Ok(())
    }

    /// Encodes `n` training steps (at most the loss ring's length) in one submit,
    /// followed by a copy of the losses into a free staging buffer. Never waits.
    pub fn submit_steps(&mut self, n: u32) -> Result<(), EngineError> {
        if let Some(p) = self.ctx.problem() {
            return Err(EngineError::Device(p));
        }
        if let Some(e) = &self.diverged {
            return Err(e.clone());
        }
        let n = n.min(LOSS_RING);
        if n == 0 {
            return Ok(());
        }
        let device = &self.ctx.device;
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("train steps"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("train"),
                timestamp_writes: None,
            });
            for _ in 0..n {
                for d in &self.plan {
                    pass.set_pipeline(self.kernels.pipelines.get(d.kernel));
                    pass.set_bind_group(0, &self.bind_group, &[d.slot * SLOT as u32]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
            }
        }
        if let Some(rb) = self
            .readbacks
            .iter()
            .find(|r| r.state.load(Ordering::Acquire) == 0)
        {
            enc.copy_buffer_to_buffer(&self.ctrl, 0, &rb.buffer, 0, 16);
            enc.copy_buffer_to_buffer(
                &self.arena,
                self.offsets.ring as u64 * 4,
                &rb.buffer,
                16,
                LOSS_RING as u64 * 4,
            );
            self.ctx.queue.submit([enc.finish()]);
            rb.state.store(1, Ordering::Release);
            let state = rb.state.clone();
            rb.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
                state.store(if r.is_ok() { 2 } else { 3 }, Ordering::Release);
            });
        } else {
            self.ctx.queue.submit([enc.finish()]);
        }
        self.steps_submitted += n as u64;
        Ok(())
    }

    /// Collects the losses that have come back (non-blocking; natively it also polls
    /// the device). Returns the new losses in step order; a divergence is reported once
    /// as an error and stops further steps.
    pub fn poll(&mut self) -> Result<Vec<f32>, EngineError> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        if let Some(p) = self.ctx.problem() {
            return Err(EngineError::Device(p));
        }
        for i in 0..self.readbacks.len() {
            let st = self.readbacks[i].state.load(Ordering::Acquire);
            if st == 3 {
                self.readbacks[i].state.store(0, Ordering::Release);
            }
            if st != 2 {
                continue;
            }
            let (step, diverged, ring) = {
                let rb = &self.readbacks[i];
                let view = rb
                    .buffer
                    .get_mapped_range(..)
                    .map_err(|e| EngineError::Invalid(format!("readback: {e}")))?;
                let words: &[u32] = bytemuck::cast_slice(&view);
                let ring: Vec<f32> = bytemuck::cast_slice(&words[4..]).to_vec();
                (words[0] as u64, words[1] != 0, ring)
            };
            self.readbacks[i].buffer.unmap();
            self.readbacks[i].state.store(0, Ordering::Release);
            self.take_losses(step, diverged, &ring);
        }
        let out = std::mem::take(&mut self.losses);
        if let Some(e) = &self.diverged
            && out.is_empty()
        {
            return Err(e.clone());
        }
        Ok(out)
    }

    fn take_losses(&mut self, step: u64, diverged: bool, ring: &[f32]) {
        let from = self.steps_seen.max(step.saturating_sub(LOSS_RING as u64));
        for s in from..step {
            self.losses.push(ring[(s % LOSS_RING as u64) as usize]);
        }
        self.steps_seen = self.steps_seen.max(step);
        if diverged && self.diverged.is_none() {
            let loss = ring[(step % LOSS_RING as u64) as usize];
            self.diverged = Some(EngineError::Diverged { step, loss });
        }
    }

    /// Waits for everything submitted and returns all losses not yet taken (native
    /// only: tests and the command line).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn finish(&mut self) -> Result<Vec<f32>, EngineError> {
        let mut all = Vec::new();
        loop {
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
            let got = self.poll();
            match got {
                Ok(v) => all.extend(v),
                Err(e) => return if all.is_empty() { Err(e) } else { Ok(all) },
            }
            if self.steps_seen >= self.steps_submitted {
                return Ok(all);
            }
            if self
                .readbacks
                .iter()
                .all(|r| r.state.load(Ordering::Acquire) == 0)
            {
                // The last submit found no free staging buffer: read the tail now.
                let (step, diverged, ring) = self.read_ring_blocking();
                self.take_losses(step, diverged, &ring);
                all.extend(std::mem::take(&mut self.losses));
                return Ok(all);
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_ring_blocking(&self) -> (u64, bool, Vec<f32>) {
        let ctrl = self.read_words_blocking(&self.ctrl, 0, 4);
        let ring = self.read_f32_blocking(self.offsets.ring, LOSS_RING as usize);
        (ctrl[0] as u64, ctrl[1] != 0, ring)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_words_blocking(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Vec<u32> {
        let raw = crate::gpu::context::read_buffer_blocking(
            &self.ctx,
            buf,
            (offset * 4) as u64,
            (len * 4) as u64,
        );
        bytemuck::pod_collect_to_vec(&raw)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_f32_blocking(&self, offset: usize, len: usize) -> Vec<f32> {
        self.read_words_blocking(&self.arena, offset, len)
            .into_iter()
            .map(f32::from_bits)
            .collect()
    }

    /// The current parameters (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn params_blocking(&self) -> Vec<f32> {
        self.read_f32_blocking(0, self.layout.n_params)
    }

    /// The parameter average (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn ema_params_blocking(&self) -> Vec<f32> {
        let src = if self.config.ema > 0.0 {
            self.offsets.ema
        } else {
            0
        };
        self.read_f32_blocking(src, self.layout.n_params)
    }

    /// Any region of the arena (blocking; native only): for kernel tests.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn arena_blocking(&self, offset: usize, len: usize) -> Vec<f32> {
        self.read_f32_blocking(offset, len)
    }

    /// Seconds per run of dispatch `index` of the step plan, timed over `reps` runs
    /// in one submit (native only: for `bench`). Returns the dispatch's FLOPs too
    /// (`None` for dispatches that are not matrix products).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_dispatch(&self, index: usize, reps: u32) -> Option<(f64, f64)> {
        let d = *self.plan.get(index)?;
        if !matches!(d.kernel, Kernel::Gemm | Kernel::GemmSmall) {
            return None;
        }
        let [m, n, k] = self.gemm_shapes.get(d.slot as usize).copied()?;
        let flops = 2.0 * m as f64 * n as f64 * k as f64;
        let run = |reps: u32| {
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(self.kernels.pipelines.get(d.kernel));
                pass.set_bind_group(0, &self.bind_group, &[d.slot * SLOT as u32]);
                for _ in 0..reps {
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
            }
            let start = web_time::Instant::now();
            self.ctx.queue.submit([enc.finish()]);
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
            start.elapsed().as_secs_f64()
        };
        run(2);
        Some((run(reps) / reps as f64, flops))
    }

    /// The dispatches of one step: (kernel name, GEMM shape `m x n x k` if a product).
    pub fn plan_summary(&self) -> Vec<(String, Option<[u32; 3]>)> {
        self.plan
            .iter()
            .map(|d| {
                let shape = match d.kernel {
                    Kernel::Gemm | Kernel::GemmSmall => {
                        self.gemm_shapes.get(d.slot as usize).copied()
                    }
                    _ => None,
                };
                (format!("{:?}", d.kernel), shape)
            })
            .collect()
    }

    /// Starts non-blocking reads of the parameters and of the sampling parameters.
    pub fn read_params_async(
        &self,
    ) -> (
        crate::gpu::context::AsyncRead,
        crate::gpu::context::AsyncRead,
    ) {
        use crate::gpu::context::AsyncRead;
        let n = self.layout.n_params as u64 * 4;
        let (src, ema_at) = self.sampling_params_source();
        (
            AsyncRead::start(&self.ctx, &self.arena, 0, n),
            AsyncRead::start(&self.ctx, src, ema_at, n),
        )
    }

    /// Where the parameters the samplers use live on the device: the arena and the
    /// byte offset of the average (or of the parameters when it is off).
    pub fn sampling_params_source(&self) -> (&wgpu::Buffer, u64) {
        let at = if self.config.ema > 0.0 {
            self.offsets.ema
        } else {
            0
        };
        (&self.arena, at as u64 * 4)
    }

    /// The arena's layout.
    pub fn offsets(&self) -> &Offsets {
        &self.offsets
    }
}

/// Why the GPU trainer could not be made.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GpuTrainError {
    /// A setting out of range.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The device cannot hold or run it.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// The kernel for a product: the tiled `gemm`, or `gemm_small` (one invocation per
/// element) for products with a side under 16, where 64-wide tiles would mostly idle.
fn pick_gemm(p: &GemmParams) -> Kernel {
    if p.m < 16 || p.n < 16 {
        Kernel::GemmSmall
    } else {
        Kernel::Gemm
    }
}

/// The dispatches of one training step, and the GEMM uniform slots they use.
fn make_plan(
    layout: &Layout,
    off: &Offsets,
    batch: usize,
    n_chunks: usize,
    n_lp: usize,
    tile: u32,
) -> (Vec<Dispatch>, Vec<GemmParams>) {
    let b = batch as u32;
    let groups = |m: u32, n: u32, z: u32| [n.div_ceil(tile), m.div_ceil(tile), z];
    let mut plan = vec![Dispatch {
        kernel: Kernel::SampleBatch,
        slot: 0,
        groups: [b.div_ceil(64), 1, 1],
    }];
    let mut slots = Vec::new();
    // The tiled kernel for big products, one invocation per element for small ones.
    let mut gemm = |plan: &mut Vec<Dispatch>, p: GemmParams, z: u32| {
        let kernel = pick_gemm(&p);
        plan.push(Dispatch {
            kernel,
            slot: slots.len() as u32,
            groups: if kernel == Kernel::Gemm {
                groups(p.m, p.n, z)
            } else {
                [(p.m * p.n).div_ceil(64), 1, z]
            },
        });
        slots.push(p);
    };
    let n_layers = layout.layers.len();
    let input_of = |l: usize| if l == 0 { off.x0 } else { off.h[l - 1] } as u32;
    // Forward: Z = [X | 1] [W; b] (the ones column is stored), hidden layers apply
    // the activation and keep act'(Z).
    for (l, layer) in layout.layers.iter().enumerate() {
        let hidden = l + 1 < n_layers;
        let (fi, fo) = (layer.fan_in as u32, layer.fan_out as u32);
        gemm(
            &mut plan,
            GemmParams {
                m: b,
                n: fo,
                k: fi + 1,
                mode: if hidden { MODE_HIDDEN } else { MODE_STORE },
                a_off: input_of(l),
                a_rs: act_stride(fi as usize) as u32,
                a_cs: 1,
                b_off: layer.w_offset as u32,
                b_rs: fo,
                b_cs: 1,
                c_off: off.h[l] as u32,
                c_rs: if hidden {
                    act_stride(fo as usize) as u32
                } else {
                    fo
                },
                d_off: if hidden { off.d[l] as u32 } else { 0 },
                d_rs: fo,
                k_chunk: fi + 1,
                c_chunk_stride: 0,
            },
            1,
        );
    }
    plan.push(Dispatch {
        kernel: Kernel::LossHead,
        slot: 0,
        groups: [n_lp as u32, 1, 1],
    });
    plan.push(Dispatch {
        kernel: Kernel::LossSum,
        slot: 0,
        groups: [1, 1, 1],
    });
    // Backward: dX = dZ W^T (times act' of the layer below), then
    // [dW; db] = [X | 1]^T dZ as per-chunk partials.
    let mut cur = 0usize;
    for l in (0..n_layers).rev() {
        let layer = layout.layers[l];
        let (fi, fo) = (layer.fan_in as u32, layer.fan_out as u32);
        if l > 0 {
            gemm(
                &mut plan,
                GemmParams {
                    m: b,
                    n: fi,
                    k: fo,
                    mode: MODE_MUL_D,
                    a_off: off.dz[cur] as u32,
                    a_rs: fo,
                    a_cs: 1,
                    b_off: layer.w_offset as u32,
                    b_rs: 1,
                    b_cs: fo,
                    c_off: off.dz[1 - cur] as u32,
                    c_rs: fi,
                    d_off: off.d[l - 1] as u32,
                    d_rs: fi,
                    k_chunk: fo,
                    c_chunk_stride: 0,
                },
                1,
            );
        }
        // The weight rows, then the bias row (column sums of dZ: the ones column of
        // [X | 1] as A), kept apart so the big product has no ragged 129th row.
        let weights = GemmParams {
            m: fi,
            n: fo,
            k: b,
            mode: MODE_STORE,
            a_off: input_of(l),
            a_rs: 1,
            a_cs: act_stride(fi as usize) as u32,
            b_off: off.dz[cur] as u32,
            b_rs: fo,
            b_cs: 1,
            c_off: (off.partial + layer.w_offset) as u32,
            c_rs: fo,
            d_off: 0,
            d_rs: 0,
            k_chunk: CHUNK_ROWS,
            c_chunk_stride: layout.n_params as u32,
        };
        gemm(&mut plan, weights, n_chunks as u32);
        gemm(
            &mut plan,
            GemmParams {
                m: 1,
                a_off: input_of(l) + fi,
                c_off: (off.partial + layer.b_offset) as u32,
                ..weights
            },
            n_chunks as u32,
        );
        cur = 1 - cur;
    }
    plan.push(Dispatch {
        kernel: Kernel::Adam,
        slot: 0,
        groups: [(layout.n_params as u32).div_ceil(64), 1, 1],
    });
    plan.push(Dispatch {
        kernel: Kernel::Advance,
        slot: 0,
        groups: [1, 1, 1],
    });
    (plan, slots)
}
