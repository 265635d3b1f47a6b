//! The top bar, the side panel of grouped controls and the keyboard.

use eframe::egui;

use super::state::{ArrowKind, DataChoice, presets};
use super::{Command, FlowApp};
use crate::core::data::Toy;
use crate::core::path::Loss;
use crate::core::schedule::{Schedule, SigmaMode};
use crate::engine::sampler::SamplerKind;
use crate::nn::layout::{Activation, TimeFeatures};

#[cfg(target_arch = "wasm32")]
const LINK_TIP: &str = "Every setting is in the page address: this copies it";
#[cfg(not(target_arch = "wasm32"))]
const LINK_TIP: &str =
    "Copies the settings as an address fragment (#...): add it to the web page's address";

/// Space plays or pauses training, R resets, the arrow keys scrub t.
pub fn keyboard(ctx: &egui::Context) -> Vec<Command> {
    if ctx.egui_wants_keyboard_input() {
        return Vec::new();
    }
    let mut out = Vec::new();
    ctx.input(|i| {
        if i.key_pressed(egui::Key::Space) {
            out.push(Command::TogglePlay);
        }
        if i.key_pressed(egui::Key::R) {
            out.push(Command::Reset);
        }
    });
    out
}

/// The arrow keys move t by 0.01 (0.1 with Shift).
fn scrub_t(ctx: &egui::Context, t: &mut f32) {
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    ctx.input(|i| {
        let step = if i.modifiers.shift { 0.1 } else { 0.01 };
        if i.key_pressed(egui::Key::ArrowRight) || i.key_pressed(egui::Key::ArrowUp) {
            *t = (*t + step).min(1.0);
        }
        if i.key_pressed(egui::Key::ArrowLeft) || i.key_pressed(egui::Key::ArrowDown) {
            *t = (*t - step).max(0.0);
        }
    });
}

/// Play/pause, step, reset, presets, the backend badge, steps/s and fps.
pub fn top_bar(ui: &mut egui::Ui, app: &mut FlowApp) -> Vec<Command> {
    let mut out = Vec::new();
    scrub_t(ui.ctx(), &mut app.settings.t);
    ui.horizontal(|ui| {
        ui.heading("Flow Playground");
        ui.separator();
        let play = if app.running { "Pause" } else { "Train" };
        if ui
            .button(play)
            .on_hover_text("Play or pause training (Space)")
            .clicked()
        {
            out.push(Command::TogglePlay);
        }
        if ui
            .button("Step")
            .on_hover_text("One training step")
            .clicked()
        {
            out.push(Command::Step);
        }
        if ui
            .button("Reset")
            .on_hover_text("A fresh model (R)")
            .clicked()
        {
            out.push(Command::Reset);
        }
        if app.embed {
            if ui
                .button("Show controls")
                .on_hover_text("Leave the slide view")
                .clicked()
            {
                out.push(Command::SetEmbed(false));
            }
        } else {
            ui.menu_button("Presets", |ui| {
                for (i, (name, _)) in presets().iter().enumerate() {
                    if ui.button(*name).clicked() {
                        out.push(Command::Preset(i));
                        ui.close();
                    }
                }
            });
            ui.menu_button("Share", |ui| {
                if ui.button("Copy link").on_hover_text(LINK_TIP).clicked() {
                    out.push(Command::CopyLink { embed: false });
                    ui.close();
                }
                if ui
                    .button("Copy link for slides")
                    .on_hover_text("The same link with the controls hidden: canvas and plots only")
                    .clicked()
                {
                    out.push(Command::CopyLink { embed: true });
                    ui.close();
                }
                ui.separator();
                if ui
                    .button("Export samples (CSV)")
                    .on_hover_text("Samples of the current model at t = 1 (the particles of a finished run, else fresh ones), x,y per line")
                    .clicked()
                {
                    out.push(Command::Export(super::Export::Samples));
                    ui.close();
                }
                if ui
                    .button("Export losses (CSV)")
                    .on_hover_text("The loss per step, with the probes' L_CFM and exact L_FM")
                    .clicked()
                {
                    out.push(Command::Export(super::Export::Losses));
                    ui.close();
                }
                ui.separator();
                if ui
                    .button("Hide controls")
                    .on_hover_text("The slide view here; \"Show controls\" brings them back")
                    .clicked()
                {
                    out.push(Command::SetEmbed(true));
                    ui.close();
                }
            });
        }
        ui.separator();
        let badge = app.backend_badge();
        let text = format!(
            "{} engine · {}",
            badge.backend.to_uppercase(),
            badge.adapter
        );
        let why = match &app.renderer {
            Some(r) => format!("Why: {}.\nDrawn with {r}.", badge.reason),
            None => format!("Why: {}.", badge.reason),
        };
        ui.label(egui::RichText::new(text).strong())
            .on_hover_text(why);
        let (sps, fps) = app.speeds();
        ui.label(format!(
            "step {}  ·  {:.0} steps/s  ·  {:.0} fps",
            app.step(),
            sps,
            fps
        ));
        if let Some(l) = app.recent_loss(50) {
            ui.label(format!("loss {l:.3}"));
        }
    });
    if let Some(n) = app.notice.clone() {
        // The dismiss button first: a long notice wraps and never pushes it away.
        ui.horizontal_wrapped(|ui| {
            if ui.small_button("x").on_hover_text("Dismiss").clicked() {
                app.notice = None;
            }
            ui.colored_label(egui::Color32::from_rgb(255, 190, 80), n);
        });
    }
    out
}

fn combo<T: Copy + PartialEq + std::fmt::Display>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut T,
    all: &[T],
    tip: &str,
) {
    egui::ComboBox::from_label(label)
        .selected_text(value.to_string())
        .show_ui(ui, |ui| {
            for v in all {
                ui.selectable_value(value, *v, v.to_string());
            }
        })
        .response
        .on_hover_text(tip);
}

const RESETS: &str = "Changing this starts a new model.";
const LIVE: &str = "Applies live, without resetting the model.";

/// The grouped controls: Data, Path, Model and loss, Training, Sampling, View.
pub fn side_panel(ui: &mut egui::Ui, app: &mut FlowApp) -> Vec<Command> {
    let mut out = Vec::new();
    let mut brush = app.brush();
    let gpu_engine = app.backend_badge().backend == "gpu";
    let mut app_dialog_open = false;
    let s = &mut app.settings;
    egui::CollapsingHeader::new("Data")
        .default_open(true)
        .show(ui, |ui| {
            let current = s.data.name();
            egui::ComboBox::from_label("dataset")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for t in Toy::ALL {
                        ui.selectable_value(&mut s.data, DataChoice::Toy(t), t.name());
                    }
                    ui.selectable_value(&mut s.data, DataChoice::Drawn, "draw your own");
                })
                .response
                .on_hover_text(RESETS);
            if ui
                .button("Open CSV...")
                .on_hover_text("Learn your own points (x,y per line). Dropping a file on the window works too.")
                .clicked()
            {
                app_dialog_open = true;
            }
            if s.data == DataChoice::Drawn {
                ui.horizontal(|ui| {
                    ui.toggle_value(&mut brush, "Brush")
                        .on_hover_text("Drag on the canvas to spray points");
                    if ui.button("Undo").clicked() {
                        out.push(Command::UndoStroke);
                    }
                    if ui.button("Clear").clicked() {
                        out.push(Command::ClearDrawing);
                    }
                });
                ui.label(format!(
                    "{} points{}",
                    s.drawn.len(),
                    if s.drawn.len() < crate::core::data::MIN_POINTS {
                        " (need 8 to train)"
                    } else {
                        ""
                    }
                ));
            }
        });
    if s.data != DataChoice::Drawn {
        brush = false;
    }
    egui::CollapsingHeader::new("Path")
        .default_open(true)
        .show(ui, |ui| {
            let mut kind = match s.schedule {
                Schedule::Poly(_) => "poly",
                other => match other {
                    Schedule::CondOt => "condot",
                    Schedule::Cosine => "cosine",
                    _ => "sqrt-beta",
                },
            };
            egui::ComboBox::from_label("schedule")
                .selected_text(kind)
                .show_ui(ui, |ui| {
                    for k in ["condot", "cosine", "sqrt-beta", "poly"] {
                        ui.selectable_value(&mut kind, k, k);
                    }
                })
                .response
                .on_hover_text(RESETS);
            s.schedule = match (kind, s.schedule) {
                ("poly", Schedule::Poly(k)) => Schedule::Poly(k),
                ("poly", _) => Schedule::Poly(2.0),
                (k, _) => k.parse().unwrap_or_default(),
            };
            if let Schedule::Poly(k) = &mut s.schedule {
                let (lo, hi) = Schedule::POLY_RANGE;
                ui.add(egui::Slider::new(k, lo..=hi).text("K (alpha = t^K)"))
                    .on_hover_text(RESETS);
            }
            ui.add(egui::Slider::new(&mut s.t, 0.0..=1.0).text("t"))
                .on_hover_text("The time shown (arrow keys scrub)");
        });
    egui::CollapsingHeader::new("Model and loss")
        .default_open(true)
        .show(ui, |ui| {
            combo(ui, "loss", &mut s.loss, &Loss::ALL, RESETS);
            ui.small(format!("network outputs: {}", s.loss.output_name()));
            if s.loss == Loss::Dsm {
                ui.small(format!(
                    "t drawn from [0, {}]",
                    1.0 - crate::core::path::DSM_DELTA
                ));
            }
            combo(
                ui,
                "activation",
                &mut s.activation,
                &Activation::ALL,
                RESETS,
            );
            combo(
                ui,
                "time input",
                &mut s.time,
                &[TimeFeatures::Sinusoidal, TimeFeatures::Raw],
                RESETS,
            );
            ui.add(egui::Slider::new(&mut s.width, 16..=256).text("width"))
                .on_hover_text(RESETS);
            ui.add(egui::Slider::new(&mut s.depth, 1..=6).text("hidden layers"))
                .on_hover_text(RESETS);
            ui.add(egui::DragValue::new(&mut s.seed).prefix("seed "))
                .on_hover_text(RESETS);
        });
    egui::CollapsingHeader::new("Training")
        .default_open(true)
        .show(ui, |ui| {
            ui.add(
                egui::Slider::new(&mut s.lr, 1e-5..=1e-2)
                    .logarithmic(true)
                    .text("learning rate"),
            )
            .on_hover_text(LIVE);
            ui.add(
                egui::Slider::new(&mut s.batch, 16..=4096)
                    .logarithmic(true)
                    .text("batch"),
            )
            .on_hover_text(LIVE);
            ui.add(egui::Slider::new(&mut s.ema, 0.0..=0.999).text("EMA decay"))
                .on_hover_text(
                    "Average of the parameters that the samplers use. ".to_string() + LIVE,
                );
            combo(
            ui,
            "engine",
            &mut s.backend,
            &[crate::engine::BackendChoice::Auto, crate::engine::BackendChoice::Gpu, crate::engine::BackendChoice::Cpu],
            "auto: a hardware GPU; a software one only if it measures faster than the CPU engine. Changing this starts a new model.",
        );
        let mut auto = s.steps_per_frame.is_none();
            ui.checkbox(&mut auto, "auto steps per frame")
                .on_hover_text("Adapts so the window stays smooth");
            if auto {
                s.steps_per_frame = None;
            } else {
                let mut n = s.steps_per_frame.unwrap_or(4);
                ui.add(egui::Slider::new(&mut n, 1..=100).text("steps per frame"));
                s.steps_per_frame = Some(n);
            }
        });
    egui::CollapsingHeader::new("Sampling")
        .default_open(true)
        .show(ui, |ui| {
            combo(
                ui,
                "sampler",
                &mut s.sampler,
                &[SamplerKind::Ode, SamplerKind::Heun, SamplerKind::Sde],
                LIVE,
            );
            if s.sampler == SamplerKind::Sde {
                ui.add(egui::Slider::new(&mut s.sigma, 0.0..=3.0).text("sigma"))
                    .on_hover_text(LIVE);
                combo(
                    ui,
                    "sigma_t",
                    &mut s.sigma_mode,
                    &[SigmaMode::Const, SigmaMode::Beta],
                    "const: sigma_t = sigma; beta: sigma_t = sigma beta_t",
                );
            }
            ui.add(egui::Slider::new(&mut s.sample_steps, 10..=500).text("steps"))
                .on_hover_text(LIVE);
            let most = if gpu_engine { 200_000 } else { 20_000 };
            ui.add(
                egui::Slider::new(&mut s.particles, 100..=most)
                    .logarithmic(true)
                    .text("particles"),
            )
            .on_hover_text(
                "Up to 200k on the GPU engine (drawn straight from the device). ".to_string()
                    + LIVE,
            );
            if ui
                .button(if app.animating {
                    "Stop animation"
                } else {
                    "Animate t"
                })
                .clicked()
            {
                out.push(Command::ToggleAnimation);
            }
        });
    let s = &mut app.settings;
    egui::CollapsingHeader::new("View")
        .default_open(true)
        .show(ui, |ui| {
            let l = &mut s.layers;
            ui.checkbox(&mut l.data, "data points");
            ui.checkbox(&mut l.density, "density p_t (exact)");
            ui.checkbox(&mut l.learned_arrows, "learned arrows");
            ui.horizontal(|ui| {
                ui.radio_value(&mut l.arrow_kind, ArrowKind::Field, "field u");
                ui.radio_value(&mut l.arrow_kind, ArrowKind::Score, "score s");
            });
            ui.checkbox(&mut l.exact_arrows, "exact marginal arrows");
            ui.checkbox(&mut l.particles, "particles");
            ui.checkbox(&mut l.trajectories, "trajectories");
            ui.small("Click a data point for its conditional path.");
        });
    app.set_brush(brush);
    #[cfg(not(target_arch = "wasm32"))]
    if app_dialog_open {
        app.file_dialog.open = true;
    }
    #[cfg(target_arch = "wasm32")]
    if app_dialog_open {
        super::web::pick_csv();
    }
    out
}
