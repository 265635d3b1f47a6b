//! Drawing the GPU sampler's buffers with egui paint callbacks: the particles and the
//! exact density heatmap, with no readback, so a hundred thousand particles cost the CPU
//! nothing.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};

use crate::gpu::shaders;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct ViewUniform {
    center: [f32; 2],
    scale: [f32; 2],
    half_size: [f32; 2],
    pad: [f32; 2],
    color: [f32; 4],
}

/// The pipeline and uniform buffer, made once per device and kept in egui-wgpu's
/// callback resources.
pub struct PointsPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
}

impl PointsPipeline {
    /// Builds the pipeline for eframe's target format and registers it.
    pub fn install(rs: &egui_wgpu::RenderState) {
        let device = &rs.device;
        let (pipeline, layout) = render_pipeline(
            rs,
            "points.wgsl",
            shaders::POINTS,
            wgpu::ShaderStages::VERTEX,
        );
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("points view"),
            size: size_of::<ViewUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        rs.renderer
            .write()
            .callback_resources
            .insert(PointsPipeline {
                pipeline,
                layout,
                uniform,
            });
        HeatPipeline::install(rs);
    }
}

/// One frame's draw of `count` particles from `buffer`.
pub struct PointsCallback {
    /// The sampler's particle buffer (`vec4` per particle).
    pub buffer: Arc<wgpu::Buffer>,
    /// How many to draw.
    pub count: u32,
    /// Data-space centre of the canvas.
    pub center: [f32; 2],
    /// Pixels per data unit.
    pub px_per_unit: f32,
    /// Half a dot's edge in pixels.
    pub half_px: f32,
    /// RGBA in 0..1.
    pub color: [f32; 4],
    /// The canvas size in points.
    pub size: egui::Vec2,
}

impl egui_wgpu::CallbackTrait for PointsCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get::<PointsPipeline>() else {
            return Vec::new();
        };
        let (w, h) = (self.size.x.max(1.0), self.size.y.max(1.0));
        let view = ViewUniform {
            center: self.center,
            scale: [2.0 * self.px_per_unit / w, 2.0 * self.px_per_unit / h],
            half_size: [2.0 * self.half_px / w, 2.0 * self.half_px / h],
            pad: [0.0; 2],
            color: self.color,
        };
        queue.write_buffer(&p.uniform, 0, bytemuck::bytes_of(&view));
        let bind_group = uniform_and_storage(device, &p.layout, &p.uniform, &self.buffer);
        resources.insert(PointsBindGroup(bind_group));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let (Some(p), Some(bg)) = (
            resources.get::<PointsPipeline>(),
            resources.get::<PointsBindGroup>(),
        ) else {
            return;
        };
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &bg.0, &[]);
        pass.draw(0..6, 0..self.count);
    }
}

struct PointsBindGroup(wgpu::BindGroup);

/// The bind group of both render shaders: the view uniform and the storage buffer.
fn uniform_and_storage(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    uniform: &wgpu::Buffer,
    storage: &wgpu::Buffer,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("render view and buffer"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: storage.as_entire_binding(),
            },
        ],
    })
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
struct HeatUniform {
    center: [f32; 2],
    scale: [f32; 2],
    lo: [f32; 2],
    cell: f32,
    n: u32,
}

/// The heatmap pipeline and its uniform buffer.
pub struct HeatPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
}

fn render_pipeline(
    rs: &egui_wgpu::RenderState,
    label: &str,
    source: &str,
    storage_stage: wgpu::ShaderStages,
) -> (wgpu::RenderPipeline, wgpu::BindGroupLayout) {
    let device = &rs.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: storage_stage,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
        ],
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(&pl),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: rs.target_format,
                blend: Some(wgpu::BlendState::ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    (pipeline, layout)
}

impl HeatPipeline {
    /// Builds the heatmap pipeline for eframe's target format and registers it.
    pub fn install(rs: &egui_wgpu::RenderState) {
        let (pipeline, layout) =
            render_pipeline(rs, "heat.wgsl", shaders::HEAT, wgpu::ShaderStages::FRAGMENT);
        let uniform = rs.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("heat view"),
            size: size_of::<HeatUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        rs.renderer.write().callback_resources.insert(HeatPipeline {
            pipeline,
            layout,
            uniform,
        });
    }
}

/// One frame's draw of the density heatmap from the sampler's field buffer.
pub struct HeatCallback {
    /// The field buffer (three `vec4` per grid point, the maximum last).
    pub buffer: Arc<wgpu::Buffer>,
    /// Data-space centre of the canvas.
    pub center: [f32; 2],
    /// Pixels per data unit.
    pub px_per_unit: f32,
    /// The canvas size in points.
    pub size: egui::Vec2,
    /// Grid lower-left corner, cell edge and cells per side.
    pub lo: [f32; 2],
    /// See `lo`.
    pub cell: f32,
    /// See `lo`.
    pub n: u32,
}

impl egui_wgpu::CallbackTrait for HeatCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(p) = resources.get::<HeatPipeline>() else {
            return Vec::new();
        };
        let (w, h) = (self.size.x.max(1.0), self.size.y.max(1.0));
        let u = HeatUniform {
            center: self.center,
            scale: [2.0 * self.px_per_unit / w, 2.0 * self.px_per_unit / h],
            lo: self.lo,
            cell: self.cell,
            n: self.n,
        };
        queue.write_buffer(&p.uniform, 0, bytemuck::bytes_of(&u));
        let bind_group = uniform_and_storage(device, &p.layout, &p.uniform, &self.buffer);
        resources.insert(HeatBindGroup(bind_group));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let (Some(p), Some(bg)) = (
            resources.get::<HeatPipeline>(),
            resources.get::<HeatBindGroup>(),
        ) else {
            return;
        };
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &bg.0, &[]);
        pass.draw(0..6, 0..1);
    }
}

struct HeatBindGroup(wgpu::BindGroup);
