//! The binding plumbing the training and sampling modules share: each binds buffers
//! only, numbered from 0, for the compute stage, and builds its pipelines from one
//! module and one layout.

/// How a binding's buffer is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `var<storage, read_write>`.
    Storage,
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<uniform>`.
    Uniform,
    /// `var<uniform>` bound with a dynamic offset (one slot per dispatch).
    UniformDynamic,
}

/// A bind-group layout whose binding `i` is `slots[i]`.
pub fn layout(device: &wgpu::Device, label: &str, slots: &[Slot]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match slot {
                    Slot::Storage => wgpu::BufferBindingType::Storage { read_only: false },
                    Slot::ReadOnly => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::Uniform | Slot::UniformDynamic => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: *slot == Slot::UniformDynamic,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// A bind group whose binding `i` is `resources[i]`.
pub fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    resources: Vec<wgpu::BindingResource<'_>>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .into_iter()
        .enumerate()
        .map(|(i, resource)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource,
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// The first `bytes` of `buffer`: the window a dynamic offset moves over.
pub fn window(buffer: &wgpu::Buffer, bytes: usize) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(bytes as u64),
    })
}

/// One compute pipeline per entry point of `module`, all on `layout`.
pub fn pipelines<'a>(
    device: &'a wgpu::Device,
    label: &str,
    module: &'a wgpu::ShaderModule,
    layout: &wgpu::BindGroupLayout,
) -> impl Fn(&str) -> wgpu::ComputePipeline + 'a {
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    move |entry: &str| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    }
}
