//! The app, headless (egui_kittest): it starts, trains, resets on a dataset change,
//! takes brush strokes, applies presets, and renders a non-blank frame on the
//! software Vulkan device.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use flow_playground::app::FlowApp;
use flow_playground::app::state::{DataChoice, Settings};
use flow_playground::core::data::Toy;
use flow_playground::core::metrics;
use flow_playground::core::path::Loss;
use flow_playground::engine::sampler::SamplerKind;

mod common;

fn quiet_app(settings: Settings) -> FlowApp {
    let mut app = FlowApp::new(settings, None);
    app.status_line = false;
    app
}

/// The app in a 1200 x 800 window without a renderer.
fn window(settings: Settings) -> Harness<'static, FlowApp> {
    Harness::builder()
        .with_size([1200.0, 800.0])
        .build_eframe(|_| quiet_app(settings))
}

fn small() -> Settings {
    Settings {
        width: 64,
        batch: 256,
        particles: 500,
        steps_per_frame: Some(10),
        ..Settings::default()
    }
}

#[test]
fn app_starts_and_the_loss_falls() {
    let mut h = window(small());
    h.run_steps(40);
    let app = h.state();
    assert!(app.step() >= 300, "trained {} steps", app.step());
    let loss = &app.history.loss;
    let mean = |xs: &[[f64; 2]]| xs.iter().map(|p| p[1]).sum::<f64>() / xs.len() as f64;
    let (first, last) = (mean(&loss[..20]), mean(&loss[loss.len() - 20..]));
    assert!(last < first, "loss {first} -> {last}");
    assert!(!app.history.probes.is_empty(), "L_FM probes were taken");
    assert!(app.notice.is_none(), "{:?}", app.notice);
}

#[test]
fn keyboard_pauses_and_resets() {
    let mut h = Harness::builder().build_eframe(|_| quiet_app(small()));
    h.run_steps(3);
    assert!(h.state().running);
    h.key_press(eframe::egui::Key::Space);
    h.run_steps(2);
    assert!(!h.state().running, "space pauses");
    let before = h.state().step();
    h.run_steps(3);
    assert_eq!(h.state().step(), before, "paused training does not advance");
    h.key_press(eframe::egui::Key::R);
    h.run_steps(1);
    assert_eq!(h.state().step(), 0, "R resets the model");
}

#[test]
fn changing_the_dataset_resets_the_model() {
    let mut h = window(small());
    h.run_steps(10);
    let trained = h.state().step();
    assert!(trained > 0);
    h.get_by_label("dataset").click();
    h.run_steps(2);
    h.get_by_label("checkerboard").click();
    // The click lands in one frame's ui; the next frame's logic rebuilds the model.
    h.run_steps(2);
    let app = h.state();
    assert_eq!(app.settings.data, DataChoice::Toy(Toy::Checkerboard));
    assert_eq!(app.data().name(), "checkerboard");
    assert!(
        app.step() < trained,
        "a new model ({} steps vs {trained})",
        app.step()
    );
    // A live setting does not reset.
    h.state_mut().settings.lr = 3e-3;
    let before = h.state().step();
    h.run_steps(2);
    assert!(h.state().step() > before);
}

#[test]
fn a_preset_sets_its_settings() {
    let mut h = window(small());
    h.get_by_label("Presets").click();
    h.run_steps(2);
    h.get_by_label("Score matching + SDE").click();
    h.run_steps(2);
    let s = &h.state().settings;
    assert_eq!(s.loss, Loss::DsmEps);
    assert_eq!(s.sampler, SamplerKind::Sde);
    assert_eq!(s.data, DataChoice::Toy(Toy::EightGaussians));
}

#[test]
fn a_brush_stroke_adds_points() {
    let settings = Settings {
        data: DataChoice::Drawn,
        drawn: (0..20).map(|i| [i as f32 * 0.1, 0.0]).collect(),
        ..small()
    };
    let mut h = window(settings);
    h.run_steps(2);
    h.get_by_label("Brush").click();
    h.run_steps(2);
    assert!(h.state().brush());
    let before = h.state().settings.drawn.len();
    let start = eframe::egui::Pos2::new(700.0, 300.0);
    h.drag_at(start);
    h.run_steps(1);
    for i in 1..8 {
        h.hover_at(start + eframe::egui::vec2(i as f32 * 10.0, i as f32 * 4.0));
        h.run_steps(1);
    }
    h.drop_at(start + eframe::egui::vec2(80.0, 32.0));
    h.run_steps(2);
    let after = h.state().settings.drawn.len();
    assert!(after > before + 8, "{before} -> {after} points");
    // Undo removes the stroke.
    h.get_by_label("Undo").click();
    h.run_steps(1);
    assert_eq!(h.state().settings.drawn.len(), before);
}

/// The particles on screen come from the model being trained, not from the one the
/// window started with.
#[test]
fn particles_follow_the_trained_model() {
    let settings = Settings {
        particles: 1000,
        sample_steps: 40,
        steps_per_frame: Some(50),
        width: 64,
        batch: 512,
        ..Settings::default()
    };
    let mut h = Harness::builder().build_eframe(|_| quiet_app(settings));
    h.run_steps(40);
    assert!(h.state().step() >= 2000);
    // Pause, then go back to t = 0 and forward to t = 1: a fresh run of the final model.
    h.state_mut().running = false;
    h.state_mut().settings.t = 0.0;
    h.run_steps(2);
    h.state_mut().settings.t = 1.0;
    h.run_steps(80);
    let app = h.state();
    let q = metrics::evaluate(app.data(), app.particles_shown(), 3);
    println!("shown particles: {q:?}");
    assert!(
        q.sliced_w2 < 0.3 * q.sliced_w2_ceiling,
        "the particles look like noise: {q:?}"
    );
}

#[test]
fn a_rendered_frame_is_not_blank() {
    if common::gpu().is_none() {
        return;
    }
    let mut h = Harness::builder()
        .with_size([1000.0, 700.0])
        .wgpu()
        .build_eframe(|_| quiet_app(small()));
    h.run_steps(20);
    let img = h.render().expect("renders");
    let lum: Vec<f64> = img
        .pixels()
        .map(|p| (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0)
        .collect();
    let mean = lum.iter().sum::<f64>() / lum.len() as f64;
    let sd = (lum.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / lum.len() as f64).sqrt();
    println!(
        "rendered {}x{}: luminance mean {mean:.3}, sd {sd:.3}",
        img.width(),
        img.height()
    );
    let path = std::env::temp_dir().join("flow-playground-kittest.png");
    img.save(&path).expect("saved");
    println!("saved {}", path.display());
    assert!(sd > 0.02, "the frame looks blank (sd {sd})");
    // Particles (yellow) are on screen.
    let yellow = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] > 150 && p[2] < 120)
        .count();
    assert!(yellow > 200, "only {yellow} particle-coloured pixels");
}

#[test]
fn csv_import_validates_and_learns_the_file() {
    let mut app = quiet_app(small());
    app.import_csv("bad.csv", "x,y\n1,2\n3,4\noops,5\n");
    let notice = app.notice.clone().unwrap_or_default();
    assert!(
        notice.contains("bad.csv") && notice.contains("line 4"),
        "{notice}"
    );
    assert_eq!(
        app.settings.data,
        DataChoice::Toy(Toy::Moons),
        "a bad file changes nothing"
    );
    let mut text = String::from("x,y\n");
    for i in 0..300 {
        let a = i as f32 * 0.05;
        text.push_str(&format!("{},{}\n", 500.0 + 40.0 * a.cos(), 20.0 * a.sin()));
    }
    app.import_csv("ring.csv", &text);
    assert_eq!(app.settings.data, DataChoice::Drawn);
    assert_eq!(app.settings.drawn.len(), 300);
    assert_eq!(app.step(), 0, "a new model for the new data");
    // Centred and scaled to the common range.
    let max = app
        .settings
        .drawn
        .iter()
        .map(|p| p[0].abs().max(p[1].abs()))
        .fold(0.0, f32::max);
    assert!(max > 1.0 && max < 4.0, "{max}");
    app.train(5);
    assert_eq!(app.step(), 5);
}

/// With the engine set to GPU, the window trains on eframe's own device (here the
/// software Vulkan device the test renderer made) and the losses come back without
/// blocking the frame.
#[test]
fn the_window_trains_on_its_own_gpu_device() {
    if common::gpu().is_none() {
        return;
    }
    let settings = Settings {
        backend: flow_playground::engine::BackendChoice::Gpu,
        ..small()
    };
    let mut h = Harness::builder()
        .with_size([900.0, 600.0])
        .wgpu()
        .build_eframe(|cc| {
            let gpu = FlowApp::compute_device(cc);
            assert!(gpu.is_some(), "the test renderer's device can compute");
            let mut app = FlowApp::with_gpu(settings, None, gpu);
            app.status_line = false;
            app
        });
    assert_eq!(h.state().backend_badge().backend, "gpu");
    for _ in 0..200 {
        h.run_steps(1);
        if h.state().step() >= 150 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let app = h.state();
    assert!(app.step() >= 150, "only {} GPU steps came back", app.step());
    let loss = &app.history.loss;
    let mean = |xs: &[[f64; 2]]| xs.iter().map(|p| p[1]).sum::<f64>() / xs.len() as f64;
    assert!(
        mean(&loss[loss.len() - 20..]) < mean(&loss[..20]),
        "the loss fell"
    );
    assert!(
        !app.history.probes.is_empty(),
        "probes read the GPU parameters"
    );
    // The particles are drawn from the device's buffer by a paint callback.
    let img = h.render().expect("renders");
    let path = std::env::temp_dir().join("flow-playground-kittest-gpu.png");
    img.save(&path).expect("saved");
    let yellow = img
        .pixels()
        .filter(|p| p[0] > 200 && p[1] > 150 && p[2] < 120)
        .count();
    println!(
        "saved {}: {yellow} particle-coloured pixels",
        path.display()
    );
    assert!(yellow > 200, "only {yellow} particle-coloured pixels");
    // The density heatmap, drawn from the device's field buffer: green-teal moons.
    let heat = img
        .pixels()
        .filter(|p| p[1] > 120 && p[0] < 180 && p[2] < 160)
        .count();
    println!("{heat} heatmap-coloured pixels");
    assert!(heat > 500, "only {heat} heatmap-coloured pixels");
}

#[test]
fn the_file_dialog_opens_a_csv() {
    let dir = std::env::temp_dir().join(format!("flow-playground-dialog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut text = String::from("x,y\n");
    for i in 0..50 {
        text.push_str(&format!("{},{}\n", i as f32 * 0.1, (i as f32 * 0.3).sin()));
    }
    std::fs::write(dir.join("wave.csv"), text).expect("written");
    let mut h = Harness::builder()
        .with_size([1200.0, 800.0])
        .build_eframe(|_| {
            let mut app = quiet_app(small());
            app.file_dialog = flow_playground::app::file_dialog::FileDialog::at(&dir);
            app
        });
    h.run_steps(1);
    h.get_by_label("Open CSV...").click();
    h.run_steps(2);
    h.get_by_label("wave.csv").click();
    h.run_steps(3);
    let app = h.state();
    assert_eq!(app.settings.data, DataChoice::Drawn);
    assert_eq!(app.settings.drawn.len(), 50);
    assert!(!app.file_dialog.open, "the dialog closes after a choice");
}

#[test]
fn share_copies_a_link_that_restores_the_settings() {
    let settings = Settings {
        data: DataChoice::Toy(Toy::Spirals),
        loss: Loss::DsmEps,
        ..small()
    };
    let mut h = window(settings.clone());
    h.run_steps(2);
    h.get_by_label("Share").click();
    h.run_steps(2);
    h.get_by_label("Copy link").click();
    h.run_steps(2);
    let link = h.state().copied_link.clone().expect("a link was copied");
    assert!(link.starts_with('#'), "{link}");
    assert!(
        link.contains("data=spirals") && link.contains("loss=dsm-eps"),
        "{link}"
    );
    assert!(!link.contains("embed"), "{link}");
    let back = flow_playground::app::url::decode(&link);
    assert!(back.ignored.is_empty(), "{:?}", back.ignored);
    assert_eq!(back.settings, h.state().settings);

    // The slide variant carries the flag.
    h.get_by_label("Share").click();
    h.run_steps(2);
    h.get_by_label("Copy link for slides").click();
    h.run_steps(2);
    let link = h.state().copied_link.clone().expect("a link was copied");
    assert!(flow_playground::app::url::decode(&link).embed, "{link}");
}

#[test]
fn a_link_applies_its_settings_and_the_embed_flag_hides_the_controls() {
    let mut h = window(small());
    h.run_steps(5);
    assert!(h.query_by_label("dataset").is_some(), "controls shown");
    h.state_mut()
        .apply_link("#data=checkerboard&width=32&batch=256&particles=500&spf=5&embed=1");
    h.run_steps(3);
    let app = h.state();
    assert_eq!(app.settings.data, DataChoice::Toy(Toy::Checkerboard));
    assert_eq!(app.settings.width, 32);
    assert_eq!(app.data().name(), "checkerboard", "the model was rebuilt");
    assert!(app.embed);
    assert!(app.notice.is_none(), "{:?}", app.notice);
    assert!(h.query_by_label("dataset").is_none(), "controls hidden");
    assert!(h.query_by_label("Pause").is_some(), "play/pause stays");
    h.get_by_label("Show controls").click();
    h.run_steps(2);
    assert!(!h.state().embed);
    assert!(h.query_by_label("dataset").is_some(), "controls back");
}

#[test]
fn a_garbage_link_names_what_it_ignored_and_keeps_training() {
    let mut h = window(small());
    h.run_steps(5);
    let before = h.state().settings.clone();
    h.state_mut()
        .apply_link("#width=abc&foo=bar&data=nope&%%%&t=0.5");
    h.run_steps(3);
    let app = h.state();
    let notice = app.notice.clone().expect("a notice");
    for needle in ["width=abc", "'foo'", "data=nope", "bad % escape"] {
        assert!(notice.contains(needle), "{needle} not in {notice}");
    }
    // The one valid value applies; the rest are defaults.
    assert_eq!(app.settings.t, 0.5);
    assert_eq!(app.settings.width, Settings::default().width);
    assert_ne!(app.settings, before);
    let step = app.step();
    h.run_steps(5);
    assert!(h.state().step() > step, "still training");
    assert!(h.query_by_label(notice.as_str()).is_some(), "notice shown");
    h.get_by_label("x").click();
    h.run_steps(2);
    assert!(
        h.state().notice.is_none(),
        "dismissed: {:?}",
        h.state().notice
    );
}

#[test]
fn a_lost_gpu_device_hands_training_to_the_cpu_engine() {
    let Some(ctx) = common::gpu() else {
        return;
    };
    ctx.watch();
    let settings = Settings {
        backend: flow_playground::engine::BackendChoice::Gpu,
        ..small()
    };
    let gpu = ctx.clone();
    let mut h = Harness::builder()
        .with_size([900.0, 600.0])
        .build_eframe(move |_| {
            let mut app = FlowApp::with_gpu(settings, None, Some(gpu));
            app.status_line = false;
            app
        });
    assert_eq!(h.state().backend_badge().backend, "gpu");
    for _ in 0..300 {
        h.run_steps(1);
        if h.state().step() >= 150 && !h.state().history.probes.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let gpu_steps = h.state().step();
    assert!(gpu_steps >= 150, "only {gpu_steps} GPU steps");
    let first_losses: f64 = h.state().history.loss[..10]
        .iter()
        .map(|p| p[1])
        .sum::<f64>()
        / 10.0;

    ctx.device.destroy();
    // The loss is reported once the device's queue has drained.
    let mut frames = 0;
    while frames < 400 && h.state().backend_badge().backend == "gpu" {
        h.run_steps(1);
        frames += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    println!("after {frames} frames: {:?}", h.state().notice);
    let app = h.state();
    let badge = app.backend_badge().clone();
    assert_eq!(badge.backend, "cpu", "{badge:?}");
    assert!(badge.reason.contains("GPU"), "{}", badge.reason);
    let notice = app.notice.clone().expect("a notice");
    assert!(notice.contains("CPU engine"), "{notice}");
    assert!(app.error().is_none(), "{:?}", app.error());
    assert!(app.running, "training goes on");
    assert!(
        app.step() >= gpu_steps,
        "the step count carries on: {} after {gpu_steps}",
        app.step()
    );
    assert!(app.model_params().iter().all(|p| p.is_finite()));
    let n = app.history.loss.len();
    h.run_steps(10);
    let app = h.state();
    let after = &app.history.loss[n..];
    assert!(
        after.len() >= 10,
        "the CPU engine trains: {} steps",
        after.len()
    );
    let resumed: f64 = after[..10].iter().map(|p| p[1]).sum::<f64>() / 10.0;
    assert!(
        resumed < first_losses,
        "the CPU engine resumed the trained model (loss {resumed:.3}), not a fresh one ({first_losses:.3})"
    );
    // A reset keeps to the CPU and says why.
    h.key_press(eframe::egui::Key::R);
    h.run_steps(2);
    assert_eq!(h.state().backend_badge().backend, "cpu");
    assert!(h.state().backend_badge().reason.contains("took over"));
}

#[test]
fn share_exports_samples_and_losses_as_csv_files() {
    let dir = std::env::temp_dir().join(format!("flow-playground-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut h = window(small());
    h.state_mut().export_dir = Some(dir.clone());
    h.run_steps(30);
    let step = h.state().step();
    assert!(step > 0);
    for (item, kind) in [
        ("Export samples (CSV)", "samples"),
        ("Export losses (CSV)", "losses"),
    ] {
        h.get_by_label("Share").click();
        h.run_steps(2);
        h.get_by_label(item).click();
        h.run_steps(1);
        let notice = h.state().notice.clone().expect("a notice");
        assert!(notice.starts_with("saved "), "{notice}");
        let file = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains(&format!("moons-{kind}-step")))
            .unwrap_or_else(|| panic!("no {kind} file in {}", dir.display()));
        let text = std::fs::read_to_string(&file).expect("readable");
        if kind == "samples" {
            // The same reader as the import: the file loads back.
            let pts = flow_playground::core::data::parse_csv(&text).expect("parses");
            assert_eq!(pts.len(), 500, "one sample per particle");
            let data = h.state().data().clone();
            let q = metrics::evaluate(&data, &pts, 1);
            assert!(q.sliced_w2.is_finite());
        } else {
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("step,loss,probe_l_cfm,probe_l_fm"));
            let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
            assert!(
                rows.len() as u64 >= step,
                "{} rows for {step} steps",
                rows.len()
            );
            assert!(rows.iter().all(|r| r.len() == 4));
            assert!(
                rows.iter()
                    .all(|r| r[1].parse::<f64>().is_ok_and(f64::is_finite))
            );
            let probed = rows.iter().filter(|r| !r[2].is_empty()).count();
            assert_eq!(probed, h.state().history.probes.len(), "probe rows");
            assert!(probed > 0);
        }
    }
    // An unwritable place is a notice, not a crash.
    h.state_mut().export_dir = Some(dir.join("missing").join("deeper"));
    h.state_mut().apply(flow_playground::app::Command::Export(
        flow_playground::app::Export::Losses,
    ));
    let notice = h.state().notice.clone().expect("a notice");
    assert!(notice.starts_with("could not save"), "{notice}");
    let _ = std::fs::remove_dir_all(&dir);
}
