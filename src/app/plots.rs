//! The loss curves (L_CFM raw and smoothed, L_FM on the same rows from the exact
//! marginal, and their gap, flat in theta as the lecture's theorem says) and the
//! sample quality against its floor.

use eframe::egui;
use egui_plot::{Corner, Legend, Line, Plot};

use super::History;

fn smooth(xs: &[[f64; 2]], a: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(xs.len());
    let mut m = None;
    for p in xs {
        let v = match m {
            None => p[1],
            Some(prev) => a * prev + (1.0 - a) * p[1],
        };
        m = Some(v);
        out.push([p[0], v]);
    }
    out
}

fn thin(xs: Vec<[f64; 2]>, max: usize) -> Vec<[f64; 2]> {
    let stride = (xs.len() / max).max(1);
    xs.into_iter().step_by(stride).collect()
}

fn tr(log: bool, v: f64) -> f64 {
    if log { v.max(1e-9).log10() } else { v }
}

/// Draws the plots.
pub fn plots_ui(ui: &mut egui::Ui, h: &History, log: &mut bool) {
    ui.horizontal(|ui| {
        ui.strong("Losses");
        ui.checkbox(log, "log scale");
        if let (Some(p), true) = (h.probes.last(), !h.probes.is_empty()) {
            ui.label(format!(
                "last probe: L_CFM {:.3}, L_FM {:.3}, gap {:.3}",
                p[1],
                p[2],
                p[1] - p[2]
            ));
        }
        if let Some(q) = h.quality.last() {
            ui.label(format!("sliced W2 {:.3} (floor {:.3})", q[1], q[2]));
        }
    });
    let log = *log;
    let width = ui.available_width();
    ui.horizontal(|ui| {
        let mut plot = Plot::new("loss plot").legend(
            Legend::default()
                .position(Corner::RightTop)
                .background_alpha(0.6),
        );
        if log {
            plot = plot.y_axis_formatter(|mark, _| format!("{:.3}", 10f64.powf(mark.value)));
        }
        plot.width(width * 0.64)
            .height(ui.available_height().max(80.0))
            .show(ui, |p| {
                let raw: Vec<[f64; 2]> = h.loss.iter().map(|q| [q[0], tr(log, q[1])]).collect();
                p.line(
                    Line::new("L_CFM (batch)", thin(raw, 2000))
                        .color(egui::Color32::from_gray(110)),
                );
                let sm: Vec<[f64; 2]> = smooth(&h.loss, 0.98)
                    .into_iter()
                    .map(|q| [q[0], tr(log, q[1])])
                    .collect();
                p.line(
                    Line::new("L_CFM (smoothed)", thin(sm, 2000))
                        .color(egui::Color32::from_rgb(255, 140, 90)),
                );
                let fm: Vec<[f64; 2]> = h.probes.iter().map(|q| [q[0], tr(log, q[2])]).collect();
                p.line(
                    Line::new("L_FM (exact, probe rows)", fm)
                        .color(egui::Color32::from_rgb(120, 200, 255)),
                );
                let gap: Vec<[f64; 2]> = h.probes.iter().map(|q| [q[0], q[1] - q[2]]).collect();
                let gap = smooth(&gap, 0.9)
                    .into_iter()
                    .map(|q| [q[0], tr(log, q[1])])
                    .collect::<Vec<_>>();
                p.line(
                    Line::new("gap L_CFM - L_FM", gap)
                        .color(egui::Color32::from_rgb(160, 230, 120)),
                );
            });
        Plot::new("quality plot")
            .legend(
                Legend::default()
                    .position(Corner::RightTop)
                    .background_alpha(0.6),
            )
            .height(ui.available_height().max(80.0))
            .show(ui, |p| {
                let sw: Vec<[f64; 2]> = h.quality.iter().map(|q| [q[0], q[1]]).collect();
                let fl: Vec<[f64; 2]> = h.quality.iter().map(|q| [q[0], q[2]]).collect();
                p.line(Line::new("sliced W2", sw).color(egui::Color32::from_rgb(255, 196, 64)));
                p.line(Line::new("floor", fl).color(egui::Color32::from_gray(150)));
            });
    });
}
