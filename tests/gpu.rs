//! The GPU engine against the CPU reference, on a real adapter (Mesa's software Vulkan
//! in CI). Without an adapter these tests skip, unless FLOW_PLAYGROUND_REQUIRE_GPU is
//! set (CI sets it), in which case they fail.

use flow_playground::core::data::{DataSet, Toy};
use flow_playground::core::path::Loss;
use flow_playground::engine::cpu::CpuTrainer;
use flow_playground::engine::gpu::{GpuTrainer, act_stride};
use flow_playground::engine::{EngineError, TrainConfig, batch_row};
use flow_playground::gpu::context::GpuContext;
use flow_playground::nn::cpu::{Workspace, backward, forward};
use flow_playground::nn::layout::{Activation, MlpConfig, TimeFeatures};

mod common;
use common::gpu;

/// Rows of `width` values, a column of ones and padding: checks the ones, returns the
/// values.
fn strip_ones(rows: &[f32], width: usize) -> Vec<f32> {
    rows.chunks_exact(act_stride(width))
        .flat_map(|r| {
            assert_eq!(r[width], 1.0, "the ones column was overwritten");
            r[..width].to_vec()
        })
        .collect()
}

fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pipelines_build_within_default_limits() {
    let Some(ctx) = gpu() else { return };
    // The device was made with `Limits::default()`: WebGPU's guaranteed minimum.
    let (got, want) = (ctx.device.limits(), wgpu::Limits::default());
    assert_eq!(
        got.max_compute_workgroup_storage_size,
        want.max_compute_workgroup_storage_size
    );
    assert_eq!(
        got.max_compute_invocations_per_workgroup,
        want.max_compute_invocations_per_workgroup
    );
    assert_eq!(
        got.max_storage_buffers_per_shader_stage,
        want.max_storage_buffers_per_shader_stage
    );
    let data = DataSet::toy(Toy::Moons, 0);
    let t = GpuTrainer::new(ctx, TrainConfig::default(), &data, None).expect("fits default limits");
    assert!(
        t.offsets().len * 4 <= wgpu::Limits::default().max_storage_buffer_binding_size as usize
    );
}

/// One step, every kernel's output against the CPU reference: the batch (inputs and
/// targets), each layer's forward output, dL/dy, the summed gradient partials, and the
/// parameters after Adam.
#[test]
fn each_kernel_matches_the_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    for (depth, act, time) in [
        (1, Activation::Silu, TimeFeatures::Sinusoidal),
        (2, Activation::Relu, TimeFeatures::Raw),
    ] {
        let config = TrainConfig {
            batch: 300,
            mlp: MlpConfig {
                width: 96,
                depth,
                activation: act,
                time,
            },
            ..TrainConfig::default()
        };
        check_kernels(ctx.clone(), config);
    }
}

fn check_kernels(ctx: GpuContext, config: TrainConfig) {
    let data = DataSet::toy(Toy::EightGaussians, 0);
    let mut g = GpuTrainer::new(ctx, config, &data, None).expect("gpu trainer");
    g.submit_steps(1).expect("submit");
    let gpu_losses = g.finish().expect("losses");
    let layout = g.layout().clone();
    let off = g.offsets().clone();
    let b = config.batch;
    let dim = layout.input_dim();

    // CPU reference of the same batch with the initial parameters.
    let params0 = layout.init_params(config.seed);
    let mut ws = Workspace::new(&layout, b);
    let mut targets = vec![0.0f32; 2 * b];
    for i in 0..b {
        let r = batch_row(
            config.loss,
            config.schedule,
            &data.mixture,
            config.seed,
            0,
            i as u32,
        );
        layout.write_input(r.x, r.t, &mut ws.input[i * dim..(i + 1) * dim]);
        targets[2 * i] = r.target[0];
        targets[2 * i + 1] = r.target[1];
    }
    let x0 = strip_ones(&g.arena_blocking(off.x0, b * act_stride(dim)), dim);
    let e = max_abs(&x0, &ws.input);
    println!("batch inputs: max abs error {e:e}");
    assert!(e < 1e-4, "batch inputs differ by {e}");
    let tg = g.arena_blocking(off.target, 2 * b);
    let e = max_abs(&tg, &targets);
    println!("batch targets: max abs error {e:e}");
    assert!(e < 1e-4, "targets differ by {e}");

    forward(&layout, &params0, &mut ws, true);
    for (l, layer) in layout.layers.iter().enumerate() {
        let h = if l + 1 < layout.layers.len() {
            strip_ones(
                &g.arena_blocking(off.h[l], b * (layer.fan_out + 1)),
                layer.fan_out,
            )
        } else {
            g.arena_blocking(off.h[l], b * layer.fan_out)
        };
        let e = max_abs(&h, &ws.acts[l]);
        println!("forward layer {l}: max abs error {e:e}");
        assert!(e < 1e-4, "layer {l} output differs by {e}");
    }
    let mut loss = 0.0f64;
    let d_out: Vec<f32> = ws
        .output()
        .iter()
        .zip(&targets)
        .map(|(y, t)| {
            loss += ((y - t) as f64).powi(2) / b as f64;
            2.0 * (y - t) / b as f32
        })
        .collect();
    // The backward pass reuses dz[0] on every second layer: the head's dL/dy is still
    // there after the step only when the network has an even number of layers.
    if layout.layers.len().is_multiple_of(2) {
        let dy = g.arena_blocking(off.dz[0], 2 * b);
        let e = max_abs(&dy, &d_out);
        println!("loss head dL/dy: max abs error {e:e}");
        assert!(e < 1e-6, "dL/dy differs by {e}");
    }
    println!("loss: gpu {} cpu {loss}", gpu_losses[0]);
    assert!(((gpu_losses[0] as f64 - loss) / loss).abs() < 1e-5);

    let mut grads = vec![0.0f32; layout.n_params];
    backward(&layout, &params0, &mut ws, &d_out, &mut grads);
    let n_chunks = b.div_ceil(flow_playground::engine::gpu::CHUNK_ROWS as usize);
    let partials = g.arena_blocking(off.partial, n_chunks * layout.n_params);
    let mut summed = vec![0.0f32; layout.n_params];
    for c in 0..n_chunks {
        for (s, p) in summed.iter_mut().zip(&partials[c * layout.n_params..]) {
            *s += p;
        }
    }
    let e = rel_diff(&summed, &grads);
    println!(
        "weight gradients: relative error {e:e}, max abs {:e}",
        max_abs(&summed, &grads)
    );
    assert!(e < 1e-5, "gradients differ: {e}");

    let mut cpu = CpuTrainer::new(config).expect("cpu");
    cpu.step(&data).expect("ok");
    let e = rel_diff(&g.params_blocking(), cpu.params());
    println!("adam: parameters relative error {e:e}");
    assert!(e < 1e-6, "parameters after Adam differ: {e}");
}

/// Twenty steps, same seed: the same loss curve and the same weights.
#[test]
fn twenty_steps_match_the_cpu_engine() {
    let Some(ctx) = gpu() else { return };
    let data = DataSet::toy(Toy::Moons, 0);
    for (loss, width, act) in [
        (Loss::Cfm, 64, Activation::Silu),
        (Loss::Cfm, 128, Activation::Tanh),
        (Loss::DsmEps, 64, Activation::Tanh),
        (Loss::DsmEps, 128, Activation::Silu),
    ] {
        let config = TrainConfig {
            loss,
            batch: 512,
            mlp: MlpConfig {
                width,
                depth: 3,
                activation: act,
                time: TimeFeatures::Sinusoidal,
            },
            ..TrainConfig::default()
        };
        let mut cpu = CpuTrainer::new(config).expect("cpu");
        let cpu_losses: Vec<f32> = (0..20).map(|_| cpu.step(&data).expect("ok")).collect();
        let mut g = GpuTrainer::new(ctx.clone(), config, &data, None).expect("gpu");
        g.submit_steps(20).expect("submit");
        let gpu_losses = g.finish().expect("losses");
        assert_eq!(gpu_losses.len(), 20);
        let el = rel_diff(&gpu_losses, &cpu_losses);
        let ew = rel_diff(&g.params_blocking(), cpu.params());
        let ee = rel_diff(&g.ema_params_blocking(), cpu.ema_params());
        println!("{loss} w{width} {act}: losses {el:e}, weights {ew:e}, average {ee:e}");
        assert!(
            el < 1e-4,
            "{loss} w{width} {act}: loss curves differ by {el}"
        );
        assert!(ew < 1e-4, "{loss} w{width} {act}: weights differ by {ew}");
        assert!(ee < 1e-4, "{loss} w{width} {act}: averages differ by {ee}");
    }
}

#[test]
fn a_lost_device_is_an_error_never_a_panic() {
    let Some(ctx) = common::gpu() else {
        return;
    };
    ctx.watch();
    let data = DataSet::toy(Toy::Moons, 0);
    let config = TrainConfig {
        batch: 256,
        ..TrainConfig::default()
    };
    let mut g = GpuTrainer::new(ctx.clone(), config, &data, None).expect("gpu trainer");
    g.submit_steps(5).expect("submits");
    assert_eq!(g.finish().expect("runs").len(), 5);
    assert!(ctx.problem().is_none());
    ctx.device.destroy();
    let mut seen = None;
    for _ in 0..100 {
        match g.submit_steps(2).and_then(|_| g.poll()) {
            Err(EngineError::Device(m)) => {
                seen = Some(m);
                break;
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    let message = seen.expect("the loss surfaces as an engine error");
    assert!(message.contains("lost"), "{message}");
    // It stays an error; the read-back helpers do not panic either.
    assert!(matches!(g.submit_steps(1), Err(EngineError::Device(_))));
    assert!(matches!(g.finish(), Err(EngineError::Device(_))));
}
