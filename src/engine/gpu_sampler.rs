//! The GPU sampler: particles, trajectories, fields on a grid, exact marginals and a
//! particle histogram (`shaders/sample.wgsl`), the twin of [`super::sampler`].
//!
//! The network runs over chunks of rows that reuse one scratch region; a whole run of
//! integration steps is one submit with no readback per step. Particles, trajectories
//! and fields stay in their buffers for drawing; the blocking reads are for tests and
//! the command line.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::core::data::DataSet;
#[cfg(not(target_arch = "wasm32"))]
use crate::core::marginal::Marginal;
use crate::core::path::Loss;
#[cfg(not(target_arch = "wasm32"))]
use crate::core::path::Vec2;
use crate::core::schedule::{Schedule, SigmaMode};
use crate::gpu::binding::{self, Slot};
use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::shaders::{self, GemmShape};
use crate::nn::layout::{Layout, TimeFeatures};

use super::gpu::{GemmParams, Globals, GpuTrainer, MODE_ACT, MODE_STORE, act_stride};
use super::sampler::{Grid, SamplerConfig, SamplerKind};

/// Rows of one network chunk.
pub const CHUNK: u32 = 16_384;
const SLOT: u64 = 256;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct SampleParams {
    n: u32,
    row0: u32,
    rows: u32,
    steps: u32,
    kind: u32,
    stage: u32,
    sigma: f32,
    sigma_mode: u32,
    traj_m: u32,
    grid_nx: u32,
    grid_ny: u32,
    pad0: u32,
    grid_lo_x: f32,
    grid_lo_y: f32,
    grid_cell: f32,
    t_field: f32,
}

const STAGE_MAIN: u32 = 0;
const STAGE_PRED: u32 = 1;
const STAGE_GRID: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Prior,
    Features,
    Gemm,
    GemmSmall,
    Integrate,
    Advance,
    GridStore,
    Exact,
    FieldMax,
    Histogram,
}

const ENTRIES: [(K, &str); 10] = [
    (K::Prior, "prior"),
    (K::Features, "features"),
    (K::Gemm, "gemm"),
    (K::GemmSmall, "gemm_small"),
    (K::Integrate, "integrate"),
    (K::Advance, "advance_particles"),
    (K::GridStore, "grid_store"),
    (K::Exact, "exact_marginal"),
    (K::FieldMax, "field_max"),
    (K::Histogram, "histogram"),
];

#[derive(Clone, Copy, Debug)]
struct Dispatch {
    kernel: K,
    gm: u32,
    sp: u32,
    groups: [u32; 3],
}

/// Particles and fields on the GPU for one trained network.
pub struct GpuSampler {
    ctx: GpuContext,
    layout: Layout,
    config: SamplerConfig,
    grid: Grid,
    n: u32,
    traj_m: u32,
    k: u32,
    arena: wgpu::Buffer,
    globals: Globals,
    globals_buf: wgpu::Buffer,
    // Held by the bind group; kept here so its lifetime is plain.
    _ctrl: wgpu::Buffer,
    particles: wgpu::Buffer,
    traj: wgpu::Buffer,
    field: wgpu::Buffer,
    hist: wgpu::Buffer,
    sp_buf: wgpu::Buffer,
    sp_slots: Vec<SampleParams>,
    bind_group: wgpu::BindGroup,
    pipelines: Vec<(K, wgpu::ComputePipeline)>,
    step_plan: Vec<Dispatch>,
    field_plan: Vec<Dispatch>,
    whole: u32,
    grid_slots: Vec<u32>,
}

impl GpuSampler {
    /// A sampler of `n` particles (keeping the paths of the first `traj_m`) and a
    /// field grid, for a network of `layout` trained with `loss` on `schedule`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: GpuContext,
        layout: Layout,
        loss: Loss,
        schedule: Schedule,
        data: &DataSet,
        n: u32,
        traj_m: u32,
        config: SamplerConfig,
        grid: Grid,
    ) -> Result<Self, GpuError> {
        let device = &ctx.device;
        let n = n.max(1);
        let traj_m = traj_m.min(n);
        let rows = CHUNK.min(n.max(grid.len() as u32));
        // Arena: parameters, then one chunk's input, hidden outputs (each with its
        // column of ones) and network outputs.
        let mut at = layout.n_params.div_ceil(4) * 4;
        let x0 = at;
        at += rows as usize * act_stride(layout.input_dim());
        let mut h = Vec::new();
        for (l, layer) in layout.layers.iter().enumerate() {
            h.push(at);
            let hidden = l + 1 < layout.layers.len();
            at += rows as usize
                * if hidden {
                    act_stride(layer.fan_out)
                } else {
                    layer.fan_out
                };
        }
        let len = at;
        let bytes = len as u64 * 4;
        let limits = device.limits();
        if bytes
            > limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size)
        {
            return Err(GpuError::TooLarge(format!(
                "the sampler needs {} MiB of scratch; the device allows less",
                bytes >> 20
            )));
        }
        let mut host = vec![0.0f32; len];
        for (l, layer) in layout.layers.iter().enumerate() {
            let start = if l == 0 { x0 } else { h[l - 1] };
            for r in 0..rows as usize {
                host[start + r * act_stride(layer.fan_in) + layer.fan_in] = 1.0;
            }
        }
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let arena = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("sampler arena"),
            contents: bytemuck::cast_slice(&host),
            usage: storage,
        });
        let ctrl = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("sampler ctrl"),
            contents: bytemuck::cast_slice(&[0u32; 4]),
            usage: storage,
        });
        let mixture = crate::gpu::context::mixture_buffer(device, &data.mixture);
        let buf = |label: &str, size: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16),
                usage: storage,
                mapped_at_creation: false,
            })
        };
        let particles = buf("particles", n as u64 * 16);
        let aux = buf("heun drift", n as u64 * 8);
        let traj = buf(
            "trajectories",
            (config.steps as u64 + 1) * traj_m as u64 * 8,
        );
        // Three vec4 per grid point, then the grid's largest log-density.
        let field = buf("fields", grid.len() as u64 * 48 + 16);
        let hist = buf("histogram", grid.len() as u64 * 4);

        let (schedule_code, poly_k) = schedule.shader_code();
        let globals = Globals {
            seed: config.seed,
            loss_code: loss.shader_code(),
            schedule_code,
            poly_k,
            n_comp: data.mixture.len() as u32,
            input_dim: layout.input_dim() as u32,
            time_mode: match layout.config.time {
                TimeFeatures::Raw => 0,
                TimeFeatures::Sinusoidal => 1,
            },
            n_params: layout.n_params as u32,
            act: layout.config.activation.shader_code(),
            x0_off: x0 as u32,
            x0_stride: act_stride(layout.input_dim()) as u32,
            y_off: *h.last().unwrap_or(&0) as u32,
            ..Globals::default()
        };
        let globals_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("sampler globals"),
            contents: bytemuck::bytes_of(&globals),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });

        // GEMM slots: one forward pass per distinct chunk size.
        let mut gm_slots: Vec<GemmParams> = Vec::new();
        let mut forward_for: Vec<(u32, u32)> = Vec::new();
        let mut forward = |rows: u32| -> u32 {
            if let Some(&(_, s)) = forward_for.iter().find(|(r, _)| *r == rows) {
                return s;
            }
            let first = gm_slots.len() as u32;
            for (l, layer) in layout.layers.iter().enumerate() {
                let hidden = l + 1 < layout.layers.len();
                let (fi, fo) = (layer.fan_in as u32, layer.fan_out as u32);
                gm_slots.push(GemmParams {
                    m: rows,
                    n: fo,
                    k: fi + 1,
                    mode: if hidden { MODE_ACT } else { MODE_STORE },
                    a_off: if l == 0 { x0 } else { h[l - 1] } as u32,
                    a_rs: act_stride(fi as usize) as u32,
                    a_cs: 1,
                    b_off: layer.w_offset as u32,
                    b_rs: fo,
                    b_cs: 1,
                    c_off: h[l] as u32,
                    c_rs: if hidden {
                        act_stride(fo as usize) as u32
                    } else {
                        fo
                    },
                    k_chunk: fi + 1,
                    ..GemmParams::default()
                });
            }
            forward_for.push((rows, first));
            first
        };
        let base = SampleParams {
            n,
            steps: config.steps,
            kind: match config.kind {
                SamplerKind::Ode => 0,
                SamplerKind::Heun => 1,
                SamplerKind::Sde => 2,
            },
            sigma: config.diffusion.sigma,
            sigma_mode: match config.diffusion.mode {
                SigmaMode::Const => 0,
                SigmaMode::Beta => 1,
            },
            traj_m,
            grid_nx: grid.nx,
            grid_ny: grid.ny,
            grid_lo_x: grid.lo[0],
            grid_lo_y: grid.lo[1],
            grid_cell: grid.cell,
            ..SampleParams::default()
        };
        let mut sp_slots = vec![SampleParams { rows: n, ..base }];
        let whole = 0u32;
        let tile = GemmShape::for_adapter(ctx.is_software()).tile();
        let net = |plan: &mut Vec<Dispatch>, first: u32, rows: u32| {
            for (l, layer) in layout.layers.iter().enumerate() {
                let fo = layer.fan_out as u32;
                let big = rows >= 16 && fo >= 16;
                plan.push(Dispatch {
                    kernel: if big { K::Gemm } else { K::GemmSmall },
                    gm: first + l as u32,
                    sp: 0,
                    groups: if big {
                        [fo.div_ceil(tile), rows.div_ceil(tile), 1]
                    } else {
                        [(rows * fo).div_ceil(64), 1, 1]
                    },
                });
            }
        };
        let stages: &[u32] = if config.kind == SamplerKind::Heun {
            &[STAGE_MAIN, STAGE_PRED]
        } else {
            &[STAGE_MAIN]
        };
        let mut step_plan = Vec::new();
        for row0 in (0..n).step_by(rows as usize) {
            let r = rows.min(n - row0);
            let first = forward(r);
            for &stage in stages {
                let sp = sp_slots.len() as u32;
                sp_slots.push(SampleParams {
                    row0,
                    rows: r,
                    stage,
                    ..base
                });
                let groups = [r.div_ceil(64), 1, 1];
                step_plan.push(Dispatch {
                    kernel: K::Features,
                    gm: 0,
                    sp,
                    groups,
                });
                net(&mut step_plan, first, r);
                step_plan.push(Dispatch {
                    kernel: K::Integrate,
                    gm: 0,
                    sp,
                    groups,
                });
            }
        }
        step_plan.push(Dispatch {
            kernel: K::Advance,
            gm: 0,
            sp: whole,
            groups: [1, 1, 1],
        });
        let g_len = grid.len() as u32;
        let mut field_plan = Vec::new();
        let mut grid_slots = Vec::new();
        for row0 in (0..g_len).step_by(rows as usize) {
            let r = rows.min(g_len - row0);
            let first = forward(r);
            let sp = sp_slots.len() as u32;
            grid_slots.push(sp);
            sp_slots.push(SampleParams {
                row0,
                rows: r,
                stage: STAGE_GRID,
                ..base
            });
            let groups = [r.div_ceil(64), 1, 1];
            field_plan.push(Dispatch {
                kernel: K::Features,
                gm: 0,
                sp,
                groups,
            });
            net(&mut field_plan, first, r);
            field_plan.push(Dispatch {
                kernel: K::GridStore,
                gm: 0,
                sp,
                groups,
            });
        }
        let exact_slot = sp_slots.len() as u32;
        grid_slots.push(exact_slot);
        sp_slots.push(base);
        field_plan.push(Dispatch {
            kernel: K::Exact,
            gm: 0,
            sp: exact_slot,
            groups: [g_len.div_ceil(64), 1, 1],
        });
        field_plan.push(Dispatch {
            kernel: K::FieldMax,
            gm: 0,
            sp: exact_slot,
            groups: [1, 1, 1],
        });

        let slot_buffer = |label: &str, bytes: Vec<&[u8]>, usage| {
            let mut data = vec![0u8; bytes.len().max(1) * SLOT as usize];
            for (i, b) in bytes.iter().enumerate() {
                data[i * SLOT as usize..i * SLOT as usize + b.len()].copy_from_slice(b);
            }
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &data,
                usage,
            })
        };
        let gm_buf = slot_buffer(
            "sampler gemm slots",
            gm_slots.iter().map(bytemuck::bytes_of).collect(),
            wgpu::BufferUsages::UNIFORM,
        );
        let sp_buf = slot_buffer(
            "sampler slots",
            sp_slots.iter().map(bytemuck::bytes_of).collect(),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );

        let gemm_shape = GemmShape::for_adapter(ctx.is_software());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sample.wgsl"),
            source: wgpu::ShaderSource::Wgsl(shaders::sampling_source(gemm_shape).into()),
        });
        let bgl = binding::layout(
            device,
            "sampler bindings",
            &[
                Slot::Storage,
                Slot::Storage,
                Slot::ReadOnly,
                Slot::Uniform,
                Slot::UniformDynamic,
                Slot::UniformDynamic,
                Slot::Storage,
                Slot::Storage,
                Slot::Storage,
                Slot::Storage,
                Slot::Storage,
            ],
        );
        let bind_group = binding::bind_group(
            device,
            "sampler bind group",
            &bgl,
            vec![
                arena.as_entire_binding(),
                ctrl.as_entire_binding(),
                mixture.as_entire_binding(),
                globals_buf.as_entire_binding(),
                binding::window(&gm_buf, size_of::<GemmParams>()),
                binding::window(&sp_buf, size_of::<SampleParams>()),
                particles.as_entire_binding(),
                aux.as_entire_binding(),
                traj.as_entire_binding(),
                field.as_entire_binding(),
                hist.as_entire_binding(),
            ],
        );
        let pipelines = {
            let make = binding::pipelines(device, "sampler pipeline layout", &module, &bgl);
            ENTRIES.iter().map(|&(k, name)| (k, make(name))).collect()
        };
        let mut s = GpuSampler {
            ctx,
            layout,
            config,
            grid,
            n,
            traj_m,
            k: 0,
            arena,
            globals,
            globals_buf,
            _ctrl: ctrl,
            particles,
            traj,
            field,
            hist,
            sp_buf,
            sp_slots,
            bind_group,
            pipelines,
            step_plan,
            field_plan,
            whole,
            grid_slots,
        };
        s.restart();
        Ok(s)
    }

    fn encode(&self, enc: &mut wgpu::CommandEncoder, plan: &[Dispatch], times: u32) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("sampler"),
            timestamp_writes: None,
        });
        for _ in 0..times {
            for d in plan {
                let Some((_, p)) = self.pipelines.iter().find(|(k, _)| *k == d.kernel) else {
                    continue;
                };
                pass.set_pipeline(p);
                pass.set_bind_group(
                    0,
                    &self.bind_group,
                    &[d.gm * SLOT as u32, d.sp * SLOT as u32],
                );
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
    }

    fn submit(&self, plan: &[Dispatch], times: u32) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        self.encode(&mut enc, plan, times);
        self.ctx.queue.submit([enc.finish()]);
    }

    /// Uploads network parameters from the host.
    pub fn set_params(&self, params: &[f32]) {
        let n = params.len().min(self.layout.n_params);
        self.ctx
            .queue
            .write_buffer(&self.arena, 0, bytemuck::cast_slice(&params[..n]));
    }

    /// Copies the trainer's sampling parameters on the device (no readback).
    pub fn copy_params_from(&self, trainer: &GpuTrainer) {
        let (src, offset) = trainer.sampling_params_source();
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, offset, &self.arena, 0, self.layout.n_params as u64 * 4);
        self.ctx.queue.submit([enc.finish()]);
    }

    /// Back to `t = 0` with fresh prior samples.
    pub fn restart(&mut self) {
        let plan = [Dispatch {
            kernel: K::Prior,
            gm: 0,
            sp: self.whole,
            groups: [self.n.div_ceil(64), 1, 1],
        }];
        self.submit(&plan, 1);
        self.k = 0;
    }

    /// Back to `t = 0` with the prior samples and Brownian increments of `seed`.
    pub fn restart_with_seed(&mut self, seed: u32) {
        self.globals.seed = seed;
        self.config.seed = seed;
        self.ctx
            .queue
            .write_buffer(&self.globals_buf, 0, bytemuck::bytes_of(&self.globals));
        self.restart();
    }

    /// Queues up to `steps` integration steps (stops at `t = 1`). Never waits.
    pub fn advance(&mut self, steps: u32) {
        let steps = steps.min(self.config.steps - self.k);
        if steps == 0 {
            return;
        }
        self.submit(&self.step_plan, steps);
        self.k += steps;
    }

    /// Number of particles.
    pub fn particle_count(&self) -> u32 {
        self.n
    }

    /// The sampler settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Integration steps queued so far.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// The time the particles will be at once the queued steps finish.
    pub fn t(&self) -> f32 {
        self.k as f32 / self.config.steps as f32
    }

    /// Whether `t = 1` is reached.
    pub fn done(&self) -> bool {
        self.k >= self.config.steps
    }

    /// The grid of the fields and the histogram.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The particle buffer (`vec4` per particle: position, Heun predictor), for drawing.
    pub fn particles_buffer(&self) -> &wgpu::Buffer {
        &self.particles
    }

    /// Starts a non-blocking read of the trajectories so far (`(k + 1) x traj_m`).
    pub fn read_trajectories_async(&self) -> crate::gpu::context::AsyncRead {
        let len = (self.k as u64 + 1) * self.traj_m as u64 * 8;
        crate::gpu::context::AsyncRead::start(&self.ctx, &self.traj, 0, len)
    }

    /// Trajectory positions, `(steps + 1) x traj_m()` `vec2`s, for drawing.
    pub fn trajectories_buffer(&self) -> &wgpu::Buffer {
        &self.traj
    }

    /// How many particles' paths are kept.
    pub fn traj_m(&self) -> u32 {
        self.traj_m
    }

    /// Three `vec4` per grid point: learned (u, s), exact (u, s), (log p_t, 0, 0, 0).
    pub fn field_buffer(&self) -> &wgpu::Buffer {
        &self.field
    }

    /// Computes the learned and exact fields at time `t` into the field buffer.
    pub fn compute_fields(&mut self, t: f32) {
        for &s in &self.grid_slots {
            self.sp_slots[s as usize].t_field = t;
            self.ctx.queue.write_buffer(
                &self.sp_buf,
                s as u64 * SLOT,
                bytemuck::bytes_of(&self.sp_slots[s as usize]),
            );
        }
        self.submit(&self.field_plan, 1);
    }

    /// Counts the particles per grid cell into the histogram buffer.
    pub fn compute_histogram(&self) {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.hist, 0, None);
        self.encode(
            &mut enc,
            &[Dispatch {
                kernel: K::Histogram,
                gm: 0,
                sp: self.whole,
                groups: [self.n.div_ceil(64), 1, 1],
            }],
            1,
        );
        self.ctx.queue.submit([enc.finish()]);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_blocking(&self, buf: &wgpu::Buffer, bytes: u64) -> Vec<u8> {
        crate::gpu::context::read_buffer_blocking(&self.ctx, buf, 0, bytes)
    }

    /// Particle positions (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn positions_blocking(&self) -> Vec<Vec2> {
        let raw = self.read_blocking(&self.particles, self.n as u64 * 16);
        bytemuck::pod_collect_to_vec::<u8, [f32; 4]>(&raw)
            .iter()
            .map(|p| [p[0], p[1]])
            .collect()
    }

    /// Trajectories of the first particles, `(k + 1) x traj_m` (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn trajectories_blocking(&self) -> Vec<Vec2> {
        let len = (self.k as u64 + 1) * self.traj_m as u64 * 8;
        let raw = self.read_blocking(&self.traj, len);
        bytemuck::pod_collect_to_vec::<u8, Vec2>(&raw)
    }

    /// The learned (field, score) per grid point and the exact marginals (blocking;
    /// native only). Call [`GpuSampler::compute_fields`] first.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn fields_blocking(&self) -> (Vec<(Vec2, Vec2)>, Vec<Marginal>) {
        let raw = self.read_blocking(&self.field, self.grid.len() as u64 * 48);
        let v: Vec<[f32; 4]> = bytemuck::pod_collect_to_vec(&raw);
        let mut learned = Vec::with_capacity(self.grid.len());
        let mut exact = Vec::with_capacity(self.grid.len());
        for c in v.chunks_exact(3) {
            learned.push(([c[0][0], c[0][1]], [c[0][2], c[0][3]]));
            exact.push(Marginal {
                log_density: c[2][0] as f64,
                field: [c[1][0] as f64, c[1][1] as f64],
                score: [c[1][2] as f64, c[1][3] as f64],
            });
        }
        (learned, exact)
    }

    /// The histogram (blocking; native only). Call [`GpuSampler::compute_histogram`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn histogram_blocking(&self) -> Vec<u32> {
        let raw = self.read_blocking(&self.hist, self.grid.len() as u64 * 4);
        bytemuck::pod_collect_to_vec(&raw)
    }

    /// Runs to `t = 1` and returns the positions (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample_blocking(&mut self) -> Vec<Vec2> {
        self.advance(self.config.steps);
        self.positions_blocking()
    }
}
