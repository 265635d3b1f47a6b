//! The plot in data coordinates: density heatmap, arrows, particles, trajectories,
//! the data and a clicked point's conditional path. Pan with a drag, zoom with the
//! wheel; in drawing mode a drag sprays points.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, TextureHandle, Vec2 as EVec2};
use web_time::Instant;

use super::Command;
use super::state::{ArrowKind, Settings};
use crate::core::data::DataSet;
use crate::core::path::{self, Vec2};
use crate::core::rng::Rng;
use crate::engine::sampler::{self, Grid, Model};

/// Heatmap resolution and extent (model coordinates).
pub const HEAT_N: u32 = 64;
/// See [`HEAT_N`].
pub const HEAT_HALF: f32 = 6.0;
/// The heatmap shows p_t at most at this t: at t = 1 a point set's density is a sum
/// of spikes that no grid can show.
pub const HEAT_T_MAX: f32 = 0.98;
/// Arrows per side.
const ARROWS: u32 = 19;
/// Most data points drawn.
const MAX_DATA_DRAWN: usize = 2000;

struct Heat {
    key: (u32, String, usize),
    texture: TextureHandle,
    max_density: f32,
    made: Instant,
}

/// What the exact arrows were computed for: t, the path and data, the grid.
type ArrowKey = (u32, String, [i32; 3]);

/// Pan, zoom and the caches that depend on them.
pub struct View {
    /// Centre of the view (model coordinates).
    pub center: Vec2,
    /// 1 shows [-5, 5] around the centre.
    pub zoom: f32,
    heat: Option<Heat>,
    exact_arrows: Option<(ArrowKey, Vec<(Vec2, Vec2)>)>,
    rng: Rng,
}

impl Default for View {
    fn default() -> Self {
        View {
            center: [0.0, 0.0],
            zoom: 1.0,
            heat: None,
            exact_arrows: None,
            rng: Rng::new(1, 0xb2),
        }
    }
}

/// What the canvas draws.
pub struct Scene<'a> {
    /// The settings (layers, t, schedule).
    pub settings: &'a Settings,
    /// The data set.
    pub data: &'a DataSet,
    /// The trained network.
    pub model: Model<'a>,
    /// The particles: positions, trajectories (`k + 1` rows), and k.
    pub particles: (&'a [Vec2], &'a [Vec2], u32),
    /// The data point whose conditional path is shown.
    pub picked: Option<Vec2>,
    /// On the GPU engine: the device's particle buffer and count, drawn from there.
    pub gpu_particles: Option<(eframe::egui_wgpu::wgpu::Buffer, u32)>,
    /// On the GPU engine: the device's field buffer on the heatmap grid.
    pub gpu_heat: Option<eframe::egui_wgpu::wgpu::Buffer>,
}

/// How pointer input is read.
#[derive(Clone, Copy)]
pub struct Input {
    /// Drawing mode: drags spray points.
    pub brush: bool,
}

struct Frame {
    rect: Rect,
    center: Vec2,
    px_per_unit: f32,
}

impl Frame {
    fn screen_from_data(&self, p: Vec2) -> Pos2 {
        let c = self.rect.center();
        Pos2::new(
            c.x + (p[0] - self.center[0]) * self.px_per_unit,
            c.y - (p[1] - self.center[1]) * self.px_per_unit,
        )
    }

    fn data_from_screen(&self, s: Pos2) -> Vec2 {
        let c = self.rect.center();
        [
            self.center[0] + (s.x - c.x) / self.px_per_unit,
            self.center[1] - (s.y - c.y) / self.px_per_unit,
        ]
    }

    fn visible_half(&self) -> f32 {
        0.5 * self.rect.width().max(self.rect.height()) / self.px_per_unit
    }
}

fn colormap(v: f32) -> Color32 {
    // Dark blue -> teal -> yellow.
    let v = v.clamp(0.0, 1.0);
    let stops = [
        (13.0, 8.0, 48.0),
        (33.0, 120.0, 140.0),
        (120.0, 200.0, 90.0),
        (250.0, 230.0, 60.0),
    ];
    let x = v * (stops.len() - 1) as f32;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: f32, q: f32| (p + (q - p) * f) as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn t_key(t: f32) -> u32 {
    (t * 1000.0).round() as u32
}

fn heat_texture(ui: &egui::Ui, view: &mut View, scene: &Scene<'_>) -> Option<(TextureHandle, f32)> {
    let s = scene.settings;
    let t = s.t.min(HEAT_T_MAX);
    let key = (
        t_key(t),
        format!("{:?}{}", s.data, s.schedule),
        scene.data.mixture.len(),
    );
    let fresh = view.heat.as_ref().is_some_and(|h| h.key == key);
    let throttled = view
        .heat
        .as_ref()
        .is_some_and(|h| h.made.elapsed().as_secs_f64() < 0.25);
    if !fresh && !throttled {
        let grid = Grid::square(HEAT_HALF, HEAT_N);
        let m = sampler::exact_fields(&scene.data.mixture, s.schedule, &grid, t);
        let dens: Vec<f32> = m.iter().map(|q| q.log_density.exp() as f32).collect();
        let max = dens.iter().copied().fold(1e-12, f32::max);
        let mut img = egui::ColorImage::filled([HEAT_N as usize, HEAT_N as usize], Color32::BLACK);
        for (i, d) in dens.iter().enumerate() {
            let (ix, iy) = (i % HEAT_N as usize, i / HEAT_N as usize);
            // Row 0 of the image is the top: flip y.
            let at = (HEAT_N as usize - 1 - iy) * HEAT_N as usize + ix;
            img.pixels[at] = colormap((d / max).sqrt());
        }
        let texture = ui
            .ctx()
            .load_texture("density", img, egui::TextureOptions::LINEAR);
        view.heat = Some(Heat {
            key,
            texture,
            max_density: max,
            made: Instant::now(),
        });
    }
    view.heat
        .as_ref()
        .map(|h| (h.texture.clone(), h.max_density))
}

/// Many small squares in one mesh: far cheaper to tessellate and rasterise than
/// thousands of anti-aliased circles.
fn dots(
    painter: &egui::Painter,
    f: &Frame,
    points: impl Iterator<Item = Vec2>,
    half: f32,
    color: Color32,
) {
    let mut mesh = egui::Mesh::default();
    for p in points {
        if !(p[0].is_finite() && p[1].is_finite()) {
            continue;
        }
        let c = f.screen_from_data(p);
        if !f.rect.expand(half).contains(c) {
            continue;
        }
        mesh.add_colored_rect(Rect::from_center_size(c, EVec2::splat(2.0 * half)), color);
    }
    painter.add(egui::Shape::mesh(mesh));
}

fn arrow(painter: &egui::Painter, from: Pos2, vec: EVec2, color: Color32) {
    let len = vec.length();
    if len < 0.5 {
        return;
    }
    let tip = from + vec;
    let stroke = Stroke::new(1.2, color);
    painter.line_segment([from, tip], stroke);
    let dir = vec / len;
    let side = EVec2::new(-dir.y, dir.x);
    let head = (len * 0.3).min(5.0);
    painter.line_segment([tip, tip - dir * head + side * head * 0.5], stroke);
    painter.line_segment([tip, tip - dir * head - side * head * 0.5], stroke);
}

fn draw_arrows(
    painter: &egui::Painter,
    f: &Frame,
    field: &[(Vec2, Vec2)],
    spacing_px: f32,
    color: Color32,
) {
    let max = field
        .iter()
        .map(|(_, v)| (v[0] * v[0] + v[1] * v[1]).sqrt())
        .filter(|v| v.is_finite())
        .fold(1e-6, f32::max);
    for (x, v) in field {
        if !(v[0].is_finite() && v[1].is_finite()) {
            continue;
        }
        let scale = 0.9 * spacing_px / max;
        arrow(
            painter,
            f.screen_from_data(*x),
            EVec2::new(v[0] * scale, -v[1] * scale),
            color,
        );
    }
}

/// Draws the canvas; returns what the pointer asked for.
pub fn canvas_ui(
    ui: &mut egui::Ui,
    view: &mut View,
    scene: &Scene<'_>,
    input: Input,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let rect = ui.available_rect_before_wrap();
    let response = ui.allocate_rect(rect, Sense::click_and_drag());
    let px_per_unit = rect.width().min(rect.height()) / (10.0 / view.zoom);
    let mut f = Frame {
        rect,
        center: view.center,
        px_per_unit,
    };

    // Pointer: pan or spray, zoom about the pointer, click to pick a data point.
    if response.dragged() {
        if input.brush {
            if let Some(p) = response.interact_pointer_pos() {
                let c = f.data_from_screen(p);
                let spray: Vec<Vec2> = (0..4)
                    .map(|_| {
                        let r = 0.12 * view.rng.uniform().sqrt();
                        let a = std::f32::consts::TAU * view.rng.uniform();
                        [c[0] + r * a.cos(), c[1] + r * a.sin()]
                    })
                    .collect();
                commands.push(Command::Spray(spray));
            }
        } else {
            let d = response.drag_delta();
            view.center[0] -= d.x / px_per_unit;
            view.center[1] += d.y / px_per_unit;
            f.center = view.center;
        }
    }
    if response.drag_stopped() && input.brush {
        commands.push(Command::EndStroke);
    }
    if response.clicked()
        && !input.brush
        && let Some(p) = response.interact_pointer_pos()
    {
        commands.push(Command::Pick(f.data_from_screen(p)));
    }
    if response.hovered() {
        let scroll = ui.input(|i| i.smooth_scroll_delta.y);
        if scroll != 0.0 {
            let before = response.hover_pos().map(|p| f.data_from_screen(p));
            view.zoom = (view.zoom * (scroll * 0.002).exp()).clamp(0.2, 20.0);
            f.px_per_unit = rect.width().min(rect.height()) / (10.0 / view.zoom);
            if let (Some(b), Some(p)) = (before, response.hover_pos()) {
                let after = f.data_from_screen(p);
                view.center[0] += b[0] - after[0];
                view.center[1] += b[1] - after[1];
                f.center = view.center;
            }
        }
    }

    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_rgb(12, 12, 20));
    let s = scene.settings;
    let layers = &s.layers;

    if layers.density
        && let Some(buffer) = &scene.gpu_heat
    {
        let cb = super::points::HeatCallback {
            buffer: std::sync::Arc::new(buffer.clone()),
            center: f.center,
            px_per_unit,
            size: rect.size(),
            lo: [-HEAT_HALF, -HEAT_HALF],
            cell: 2.0 * HEAT_HALF / HEAT_N as f32,
            n: HEAT_N,
        };
        painter.add(eframe::egui_wgpu::Callback::new_paint_callback(rect, cb));
        colour_bar(&painter, rect, None);
    } else if layers.density
        && let Some((tex, max)) = heat_texture(ui, view, scene)
    {
        let lo = f.screen_from_data([-HEAT_HALF, HEAT_HALF]);
        let hi = f.screen_from_data([HEAT_HALF, -HEAT_HALF]);
        painter.image(
            tex.id(),
            Rect::from_min_max(lo, hi),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        colour_bar(&painter, rect, Some(max));
    }

    if layers.data {
        let comps = &scene.data.mixture.components;
        let stride = (comps.len() / MAX_DATA_DRAWN).max(1);
        let color = Color32::from_rgba_unmultiplied(220, 220, 230, 110);
        // Mixture components as circles of one standard deviation, points as dots.
        for c in comps.iter().filter(|c| c.std > 0.0) {
            painter.circle_stroke(
                f.screen_from_data(c.mean),
                c.std * px_per_unit,
                Stroke::new(1.0, color),
            );
        }
        let pts = comps
            .iter()
            .step_by(stride)
            .filter(|c| c.std == 0.0)
            .map(|c| c.mean);
        dots(&painter, &f, pts, 1.1, color);
    }

    let half = f.visible_half();
    let grid = Grid {
        lo: [f.center[0] - half, f.center[1] - half],
        cell: 2.0 * half / ARROWS as f32,
        nx: ARROWS,
        ny: ARROWS,
    };
    let spacing = grid.cell * px_per_unit;
    let pick = |uv: &(Vec2, Vec2)| match layers.arrow_kind {
        ArrowKind::Field => uv.0,
        ArrowKind::Score => uv.1,
    };
    if layers.exact_arrows {
        let key = (
            t_key(s.t),
            format!("{:?}{}{:?}", s.data, s.schedule, layers.arrow_kind),
            [
                (grid.lo[0] * 20.0) as i32,
                (grid.lo[1] * 20.0) as i32,
                (grid.cell * 200.0) as i32,
            ],
        );
        if view.exact_arrows.as_ref().is_none_or(|(k, _)| *k != key) {
            let m = sampler::exact_fields(&scene.data.mixture, s.schedule, &grid, s.t);
            let pts = grid.points();
            let field = pts
                .iter()
                .zip(&m)
                .map(|(x, q)| (*x, pick(&(q.field32(), q.score32()))))
                .collect();
            view.exact_arrows = Some((key, field));
        }
        if let Some((_, field)) = &view.exact_arrows {
            draw_arrows(
                &painter,
                &f,
                field,
                spacing,
                Color32::from_rgb(120, 200, 255),
            );
        }
    }
    if layers.learned_arrows {
        let learned = sampler::learned_fields(scene.model, &grid, s.t);
        let pts = grid.points();
        let field: Vec<(Vec2, Vec2)> = pts
            .iter()
            .zip(&learned)
            .map(|(x, uv)| (*x, pick(uv)))
            .collect();
        draw_arrows(
            &painter,
            &f,
            &field,
            spacing,
            Color32::from_rgb(255, 140, 90),
        );
    }

    let (positions, traj, k) = scene.particles;
    if layers.trajectories {
        let m = traj.len() / (k as usize + 1);
        for j in 0..m {
            let pts: Vec<Pos2> = (0..=k as usize)
                .map(|k| f.screen_from_data(traj[k * m + j]))
                .collect();
            painter.add(egui::Shape::line(
                pts,
                Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 255, 255, 120)),
            ));
        }
    }
    if layers.particles
        && let Some((buffer, count)) = &scene.gpu_particles
    {
        let cb = super::points::PointsCallback {
            buffer: std::sync::Arc::new(buffer.clone()),
            count: *count,
            center: f.center,
            px_per_unit,
            half_px: 1.3,
            color: [1.0, 0.77, 0.25, 1.0],
            size: rect.size(),
        };
        painter.add(eframe::egui_wgpu::Callback::new_paint_callback(rect, cb));
    } else if layers.particles {
        dots(
            &painter,
            &f,
            positions.iter().copied(),
            1.3,
            Color32::from_rgb(255, 196, 64),
        );
    }

    if let Some(z) = scene.picked {
        let (centre, radius) = path::conditional_circle(s.schedule, z, s.t);
        let stroke = Stroke::new(1.5, Color32::from_rgb(255, 90, 200));
        painter.circle_stroke(f.screen_from_data(centre), radius * px_per_unit, stroke);
        painter.circle_stroke(
            f.screen_from_data(centre),
            2.0 * radius * px_per_unit,
            Stroke::new(1.0, stroke.color.gamma_multiply(0.5)),
        );
        painter.circle_filled(f.screen_from_data(z), 4.0, stroke.color);
        let c = s.schedule.coeffs(path::guarded_time(s.t));
        let ring: Vec<(Vec2, Vec2)> = (0..12)
            .map(|i| {
                let a = std::f32::consts::TAU * i as f32 / 12.0;
                let x = [centre[0] + radius * a.cos(), centre[1] + radius * a.sin()];
                (x, path::conditional_field(c, x, z))
            })
            .collect();
        draw_arrows(&painter, &f, &ring, spacing, stroke.color);
    }

    let heat = if !layers.density {
        String::new()
    } else if s.t > HEAT_T_MAX {
        format!("heatmap: exact p_t at t = {HEAT_T_MAX}   ")
    } else {
        "heatmap: exact p_t   ".to_string()
    };
    let label = format!(
        "t = {:.2}   {}{}",
        s.t,
        heat,
        match (layers.learned_arrows, layers.arrow_kind) {
            (true, ArrowKind::Field) => "orange arrows: learned u",
            (true, ArrowKind::Score) => "orange arrows: learned s",
            _ => "",
        }
    );
    painter.text(
        rect.left_top() + EVec2::new(8.0, 6.0),
        egui::Align2::LEFT_TOP,
        label,
        egui::FontId::proportional(14.0),
        Color32::from_gray(230),
    );
    if input.brush {
        painter.text(
            rect.left_top() + EVec2::new(8.0, 26.0),
            egui::Align2::LEFT_TOP,
            "drawing: drag to spray points",
            egui::FontId::proportional(13.0),
            Color32::from_rgb(255, 200, 120),
        );
    }
    commands
}

fn colour_bar(painter: &egui::Painter, rect: Rect, max: Option<f32>) {
    let w = 12.0;
    let h = (rect.height() * 0.35).min(180.0);
    let x = rect.right() - w - 14.0;
    let y0 = rect.top() + 12.0;
    for i in 0..32 {
        let v = 1.0 - i as f32 / 31.0;
        let r = Rect::from_min_size(
            Pos2::new(x, y0 + h * i as f32 / 32.0),
            EVec2::new(w, h / 32.0 + 0.5),
        );
        painter.rect_filled(r, 0.0, colormap(v));
    }
    let font = egui::FontId::proportional(11.0);
    let color = Color32::from_gray(220);
    painter.text(
        Pos2::new(x - 4.0, y0),
        egui::Align2::RIGHT_TOP,
        max.map_or_else(|| "max".to_string(), |m| format!("{m:.3}")),
        font.clone(),
        color,
    );
    painter.text(
        Pos2::new(x - 4.0, y0 + h * 0.5),
        egui::Align2::RIGHT_CENTER,
        "sqrt scale",
        font.clone(),
        color,
    );
    painter.text(
        Pos2::new(x - 4.0, y0 + h),
        egui::Align2::RIGHT_BOTTOM,
        "0",
        font,
        color,
    );
}
