//! The interactive app: the lecture's objects drawn live while the model trains.
//!
//! `App::logic` drives the engine (training steps within a frame budget, particles
//! towards the chosen t, the loss probes); `App::ui` draws the panels and the canvas.
//! UI code returns [`Command`]s that are applied in one place.

pub mod canvas;
pub mod controls;
pub mod engine;
#[cfg(not(target_arch = "wasm32"))]
pub mod file_dialog;
pub mod plots;
pub mod points;
pub mod state;
pub mod url;
#[cfg(target_arch = "wasm32")]
pub mod web;

use eframe::egui;
use serde_json::json;
use web_time::Instant;

use crate::core::data::{DataSet, Mixture};
use crate::core::metrics;
use crate::engine::cpu::loss_pair;
use crate::engine::gpu_sampler::GpuSampler;
use crate::engine::sampler::Grid;
use crate::engine::sampler::{self, Model, Particles};
use crate::gpu::context::GpuContext;
use engine::AppEngine;
use state::{DataChoice, ModelKey, Settings};

/// The key eframe stores the settings under.
pub const STORAGE_KEY: &str = "flow-playground-settings";
/// The frame time aimed at (50 fps) when steps per frame adapt.
const FRAME_TARGET_S: f64 = 0.020;
/// Training time per frame at least, and the share of a frame it may take when
/// drawing alone already misses the target (slow or software renderers).
const TRAIN_MIN_S: f64 = 0.006;
const TRAIN_SHARE: f64 = 0.45;
/// Particle-integration time per frame at least, and its share of a slow frame.
const PARTICLE_MIN_S: f64 = 0.006;
const PARTICLE_SHARE: f64 = 0.25;
/// Rows of each `L_CFM` / `L_FM` probe.
const PROBE_ROWS: usize = 128;
/// Steps between probes.
const PROBE_EVERY: u64 = 20;
/// Particles whose paths are drawn.
const TRAJECTORIES: usize = 48;
/// Steps between sample-quality measurements.
const QUALITY_EVERY: u64 = 500;
/// The most points a file may bring into the window (the exact marginals cost
/// O(points) per pixel).
pub const MAX_IMPORTED: usize = 20_000;

/// What a widget asks for; applied by [`FlowApp::apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Start over with a fresh model.
    Reset,
    /// One training step.
    Step,
    /// Play or pause training.
    TogglePlay,
    /// Play or pause the particle animation.
    ToggleAnimation,
    /// Apply preset `i` of [`state::presets`].
    Preset(usize),
    /// Remove the drawn points.
    ClearDrawing,
    /// Remove the last brush stroke.
    UndoStroke,
    /// Add points to the drawing (model coordinates).
    Spray(Vec<[f32; 2]>),
    /// End of a brush stroke.
    EndStroke,
    /// Show the conditional path of the data point nearest to this position.
    Pick([f32; 2]),
    /// Load points from CSV text (a dropped or opened file); the name is for messages.
    ImportCsv {
        /// File name.
        name: String,
        /// Its contents.
        text: String,
    },
    /// Show a message (a file that could not be read, a copied link).
    Notice(String),
    /// Copy a link to the current settings; `embed` hides the controls for slides.
    CopyLink {
        /// With the embed flag.
        embed: bool,
    },
    /// Show or hide the controls (the embed flag).
    SetEmbed(bool),
    /// Save (desktop) or download (web page) a CSV file.
    Export(Export),
}

/// What can be exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// Samples of the current model at t = 1 (the finished particle run, or fresh
    /// ones), `x,y` per line.
    Samples,
    /// The loss history: batch loss per step, with the probes' L_CFM and L_FM.
    Losses,
}

/// The most samples one export draws (on the CPU, at the click).
pub const EXPORT_SAMPLES_MAX: usize = 10_000;

/// Histories for the plots.
#[derive(Default)]
pub struct History {
    /// (step, L_CFM of the batch).
    pub loss: Vec<[f64; 2]>,
    /// (step, L_CFM, L_FM) on probe rows.
    pub probes: Vec<[f64; 3]>,
    /// (step, sliced W2, its floor).
    pub quality: Vec<[f64; 3]>,
}

/// Everything built from the settings: replaced when the model key changes.
struct Live {
    key: ModelKey,
    data: DataSet,
    trainer: AppEngine,
    particles: Particles,
    particles_started: Instant,
    /// The parameters the current particle run uses: one model per run, even while
    /// training goes on.
    particle_params: Vec<f32>,
    /// The last finished run: (step k, positions, trajectories).
    shown: Option<ShownRun>,
    /// On the GPU engine: the particles live on the device and are drawn from there.
    gpu_particles: Option<GpuSampler>,
    /// The t (in thousandths) the device's heatmap fields were computed for.
    gpu_heat_t: Option<u32>,
    /// Trajectories of the last finished GPU run (k, paths), read back once per run.
    gpu_traj: (u32, Vec<crate::core::path::Vec2>),
    /// That read while it is on its way (k, read).
    gpu_traj_pending: Option<(u32, crate::gpu::context::AsyncRead)>,
    error: Option<String>,
}

type ShownRun = (
    u32,
    Vec<crate::core::path::Vec2>,
    Vec<crate::core::path::Vec2>,
);

impl Live {
    fn build(settings: &Settings, gpu: Option<&GpuContext>) -> Result<Self, String> {
        let data = match &settings.data {
            DataChoice::Toy(t) => DataSet::toy(*t, settings.seed),
            DataChoice::Drawn => {
                DataSet::user("drawn", settings.drawn.clone()).map_err(|e| e.to_string())?
            }
        };
        // Drawn points are already in model coordinates: keep them as they are.
        let data = if settings.data == DataChoice::Drawn {
            DataSet {
                mixture: Mixture::from_points(&settings.drawn),
                normalizer: Default::default(),
                ..data
            }
        } else {
            data
        };
        let trainer = AppEngine::build(settings.backend, gpu, settings.train_config(), &data)?;
        let gpu_particles = match (gpu, trainer.gpu_trainer()) {
            (Some(ctx), Some(_)) => Some(make_gpu_sampler(ctx, settings, &trainer, &data)?),
            _ => None,
        };
        Ok(Live {
            key: settings.model_key(),
            particles: Particles::with_trajectories(
                settings.particles,
                settings.sampler_config(),
                TRAJECTORIES,
            ),
            particles_started: Instant::now(),
            particle_params: trainer.ema_params().to_vec(),
            shown: None,
            gpu_particles,
            gpu_heat_t: None,
            gpu_traj: (0, Vec::new()),
            gpu_traj_pending: None,
            data,
            trainer,
            error: None,
        })
    }

    fn model(&self) -> Model<'_> {
        Model {
            layout: self.trainer.layout(),
            params: self.trainer.ema_params(),
            loss: self.trainer.config().loss,
            schedule: self.trainer.config().schedule,
        }
    }
}

/// The app.
pub struct FlowApp {
    /// The user's settings (persisted).
    pub settings: Settings,
    live: Live,
    gpu: Option<GpuContext>,
    /// Plot histories.
    pub history: History,
    /// Training on or off.
    pub running: bool,
    /// Particles moving through t by themselves.
    pub animating: bool,
    /// A message for the user (bad stored settings, divergence, too few points).
    pub notice: Option<String>,
    view: canvas::View,
    brush: bool,
    strokes: Vec<usize>,
    picked: Option<[f32; 2]>,
    steps_per_frame: u32,
    steps_per_second: f64,
    fps: f64,
    last_frame: Option<Instant>,
    last_status: Option<Instant>,
    /// Print the status line (stdout natively, the console on the web).
    pub status_line: bool,
    /// The CSV file dialog (desktop).
    #[cfg(not(target_arch = "wasm32"))]
    pub file_dialog: file_dialog::FileDialog,
    /// Canvas and plots only (the link's embed flag), for slides.
    pub embed: bool,
    /// The graphics API drawing the window (WebGPU, WebGL2, Vulkan, ...), if known.
    pub renderer: Option<String>,
    /// The last link copied (for tests and the status line).
    pub copied_link: Option<String>,
    /// The address bar as last written (web page).
    #[cfg(target_arch = "wasm32")]
    address: AddressSync,
    /// Why the GPU was given up (a lost device, a device error), if it was.
    gpu_lost: Option<String>,
    /// Where exports are saved (desktop); the working directory when `None`.
    #[cfg(not(target_arch = "wasm32"))]
    pub export_dir: Option<std::path::PathBuf>,
}

/// Keeps the page address in step with the settings (web page).
#[cfg(target_arch = "wasm32")]
#[derive(Default)]
struct AddressSync {
    /// The fragment as the browser reported it after the last write or read.
    written: String,
    /// What that fragment encodes.
    encoded: Option<(Settings, bool)>,
    last_write: Option<Instant>,
}

impl FlowApp {
    /// An app with `settings` on the CPU engine; training starts at once.
    pub fn new(settings: Settings, notice: Option<String>) -> Self {
        Self::with_gpu(settings, notice, None)
    }

    /// An app that may train on `gpu` (eframe's device, when it can compute).
    pub fn with_gpu(
        mut settings: Settings,
        notice: Option<String>,
        gpu: Option<GpuContext>,
    ) -> Self {
        settings.sanitize();
        let (live, notice) = match Live::build(&settings, gpu.as_ref()) {
            Ok(l) => (l, notice),
            Err(e) => {
                let fallback = Settings::default();
                let msg = format!("settings not usable ({e}); defaults restored");
                settings = fallback;
                (
                    Live::build(&settings, None).expect("defaults build"),
                    Some(msg),
                )
            }
        };
        FlowApp {
            settings,
            live,
            gpu,
            history: History::default(),
            running: true,
            animating: false,
            notice,
            view: canvas::View::default(),
            brush: false,
            strokes: Vec::new(),
            picked: None,
            steps_per_frame: 4,
            steps_per_second: 0.0,
            fps: 0.0,
            last_frame: None,
            last_status: None,
            status_line: true,
            #[cfg(not(target_arch = "wasm32"))]
            file_dialog: Default::default(),
            embed: false,
            renderer: None,
            copied_link: None,
            #[cfg(target_arch = "wasm32")]
            address: AddressSync::default(),
            gpu_lost: None,
            #[cfg(not(target_arch = "wasm32"))]
            export_dir: None,
        }
    }

    /// The app for a window: settings from eframe's storage (or defaults, with a
    /// notice if the stored state could not be read), eframe's device for compute when
    /// it can run compute shaders.
    /// On the web page the address's settings, when it has any, win over the stored
    /// ones (a shared link shows what its author saw).
    pub fn from_creation_context(cc: &eframe::CreationContext<'_>) -> Self {
        let (mut settings, mut notice) = Self::stored_settings(cc.storage);
        #[cfg(target_arch = "wasm32")]
        let link = url::decode(&web::hash().unwrap_or_default());
        #[cfg(not(target_arch = "wasm32"))]
        let link = url::decode("");
        if link.has_settings {
            settings = link.settings.clone();
        }
        if let Some(n) = link.notice() {
            notice = Some(n);
        }
        let mut app = Self::with_gpu(settings, notice, Self::compute_device(cc));
        app.embed = link.embed;
        app.renderer = cc
            .wgpu_render_state
            .as_ref()
            .map(|rs| renderer_name(rs.adapter.get_info().backend));
        app.log_notice();
        app
    }

    /// eframe's device, if it can run compute shaders and read storage buffers in
    /// vertex shaders (not on WebGL2 or GL); the particle and heatmap pipelines are
    /// registered with eframe's renderer then, and only then.
    pub fn compute_device(cc: &eframe::CreationContext<'_>) -> Option<GpuContext> {
        let rs = cc.wgpu_render_state.as_ref()?;
        let downlevel = rs.adapter.get_downlevel_capabilities();
        let vertex_storage = downlevel
            .flags
            .contains(eframe::egui_wgpu::wgpu::DownlevelFlags::VERTEX_STORAGE);
        let ctx = GpuContext::from_device(
            rs.device.clone(),
            rs.queue.clone(),
            rs.adapter.get_info(),
            downlevel,
        )
        .ok()?;
        // A lost device or a device error must not take the window down.
        ctx.watch();
        if !vertex_storage {
            return None;
        }
        points::PointsPipeline::install(rs);
        Some(ctx)
    }

    /// Settings from eframe's storage, or the defaults with a notice.
    pub fn stored_settings(storage: Option<&dyn eframe::Storage>) -> (Settings, Option<String>) {
        let stored = storage.and_then(|s| s.get_string(STORAGE_KEY));
        match stored {
            None => (Settings::default(), None),
            Some(text) => match serde_json::from_str::<Settings>(&text) {
                Ok(s) => (s, None),
                Err(e) => (
                    Settings::default(),
                    Some(format!(
                        "saved settings could not be read ({e}); defaults restored"
                    )),
                ),
            },
        }
    }

    /// Training steps applied so far.
    pub fn step(&self) -> u64 {
        self.live.trainer.steps_done()
    }

    /// The data set being learned.
    pub fn data(&self) -> &DataSet {
        &self.live.data
    }

    /// Mean loss of the last `n` steps.
    pub fn recent_loss(&self, n: usize) -> Option<f64> {
        let l = &self.history.loss;
        if l.is_empty() {
            return None;
        }
        let tail = &l[l.len().saturating_sub(n)..];
        Some(tail.iter().map(|p| p[1]).sum::<f64>() / tail.len() as f64)
    }

    /// The backend badge: engine, adapter, why.
    pub fn backend_badge(&self) -> &engine::Badge {
        &self.live.trainer.badge
    }

    /// Applies one command.
    pub fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Reset => self.rebuild(),
            Command::Step => {
                self.running = false;
                self.train(1);
            }
            Command::TogglePlay => self.running = !self.running,
            Command::ToggleAnimation => {
                self.animating = !self.animating;
                if self.animating && self.settings.t >= 1.0 {
                    self.settings.t = 0.0;
                }
            }
            Command::Preset(i) => {
                if let Some((_, s)) = state::presets().into_iter().nth(i) {
                    self.settings = s;
                    self.rebuild();
                    self.running = true;
                }
            }
            Command::ClearDrawing => {
                self.settings.drawn.clear();
                self.strokes.clear();
            }
            Command::UndoStroke => {
                let keep = self.strokes.pop().unwrap_or(0);
                self.settings.drawn.truncate(keep);
            }
            Command::Spray(points) => {
                if self.strokes.last() != Some(&usize::MAX) {
                    self.strokes.push(self.settings.drawn.len());
                    self.strokes.push(usize::MAX);
                }
                self.settings.drawn.extend(points);
            }
            Command::EndStroke => {
                if self.strokes.last() == Some(&usize::MAX) {
                    self.strokes.pop();
                }
            }
            Command::ImportCsv { name, text } => self.import_csv(&name, &text),
            Command::Notice(text) => self.say(text),
            Command::CopyLink { embed } => {
                let link = self.link(embed);
                self.notice = Some(format!(
                    "link copied ({} characters){}",
                    link.len(),
                    if embed {
                        ", with the controls hidden"
                    } else {
                        ""
                    }
                ));
                self.copied_link = Some(link);
            }
            Command::SetEmbed(on) => self.embed = on,
            Command::Export(what) => self.export(what),
            Command::Pick(p) => {
                let nearest = self
                    .live
                    .data
                    .mixture
                    .components
                    .iter()
                    .map(|c| c.mean)
                    .min_by(|a, b| {
                        let da = (a[0] - p[0]).powi(2) + (a[1] - p[1]).powi(2);
                        let db = (b[0] - p[0]).powi(2) + (b[1] - p[1]).powi(2);
                        da.total_cmp(&db)
                    });
                self.picked = nearest;
            }
        }
    }

    /// The CSV text of an export and its file name.
    pub fn export_csv(&mut self, what: Export) -> (String, String) {
        use std::fmt::Write as _;
        let step = self.step();
        let data = self.settings.data.name();
        match what {
            Export::Samples => {
                // A finished run at t = 1 is a set of samples already; else draw fresh
                // ones on the CPU (fewer on the web page, where this blocks a frame).
                let steps = self.settings.sample_steps.max(1);
                let finished = match &self.live.shown {
                    Some((k, x, _)) if *k == steps => Some(x.clone()),
                    _ if self.live.gpu_particles.is_none() && self.live.particles.k == steps => {
                        Some(self.live.particles.x.clone())
                    }
                    _ => None,
                };
                let samples = finished.unwrap_or_else(|| {
                    self.live.trainer.refresh();
                    let cap = if cfg!(target_arch = "wasm32") {
                        2000
                    } else {
                        EXPORT_SAMPLES_MAX
                    };
                    let n = self.settings.particles.min(cap);
                    sampler::sample(self.live.model(), self.settings.sampler_config(), n)
                });
                let mut text = String::from("x,y\n");
                for p in &samples {
                    let _ = writeln!(text, "{},{}", p[0], p[1]);
                }
                (
                    format!("flow-playground-{data}-samples-step{step}.csv"),
                    text,
                )
            }
            Export::Losses => {
                let mut text = String::from("step,loss,probe_l_cfm,probe_l_fm\n");
                let mut probes = self.history.probes.iter().peekable();
                for l in &self.history.loss {
                    let _ = write!(text, "{},{}", l[0], l[1]);
                    match probes.peek() {
                        Some(p) if p[0] == l[0] => {
                            let _ = writeln!(text, ",{},{}", p[1], p[2]);
                            probes.next();
                        }
                        _ => text.push_str(",,\n"),
                    }
                }
                (
                    format!("flow-playground-{data}-losses-step{step}.csv"),
                    text,
                )
            }
        }
    }

    /// Saves (desktop) or downloads (web page) an export; a notice says where.
    pub fn export(&mut self, what: Export) {
        let (name, text) = self.export_csv(what);
        let rows = text.lines().count().saturating_sub(1);
        #[cfg(target_arch = "wasm32")]
        let result =
            web::download(&name, &text).map(|()| format!("{name} downloaded ({rows} rows)"));
        #[cfg(not(target_arch = "wasm32"))]
        let result = {
            let dir = self
                .export_dir
                .clone()
                .or_else(|| std::env::current_dir().ok())
                .unwrap_or_default();
            let path = dir.join(&name);
            std::fs::write(&path, &text)
                .map(|()| format!("saved {} ({rows} rows)", path.display()))
                .map_err(|e| format!("could not save {}: {e}", path.display()))
        };
        self.say(result.unwrap_or_else(|e| e));
    }

    /// Applies the settings an address fragment names (the rest take their defaults)
    /// and its embed flag; what cannot be used is named in a notice.
    pub fn apply_link(&mut self, hash: &str) {
        let link = url::decode(hash);
        if link.has_settings && link.settings != self.settings {
            self.settings = link.settings.clone();
            self.rebuild();
            self.running = true;
        }
        self.embed = link.embed;
        if let Some(n) = link.notice() {
            self.say(n);
        }
    }

    /// A link to the current settings: the page's address with the settings in its
    /// fragment (natively, where there is no page, the fragment alone).
    pub fn link(&self, embed: bool) -> String {
        #[cfg(target_arch = "wasm32")]
        let base = web::page_url().unwrap_or_default();
        #[cfg(not(target_arch = "wasm32"))]
        let base = String::new();
        format!("{base}#{}", url::encode(&self.settings, embed))
    }

    /// Shows a notice and logs it.
    fn say(&mut self, text: String) {
        self.notice = Some(text);
        self.log_notice();
    }

    /// Writes the notice to the console (web) or stderr, for scripts and tests.
    fn log_notice(&self) {
        let Some(n) = &self.notice else { return };
        let text = format!("flow-playground notice: {n}");
        #[cfg(target_arch = "wasm32")]
        web::log(&text);
        #[cfg(not(target_arch = "wasm32"))]
        if self.status_line {
            eprintln!("{text}");
        }
    }

    /// Keeps the address bar and the settings in step (web page): an address edited
    /// by hand (or by Back) is applied; changed settings are written, at most about
    /// three times a second (browsers throttle faster history updates).
    #[cfg(target_arch = "wasm32")]
    fn sync_address(&mut self) {
        let Some(now_hash) = web::hash() else { return };
        let a = &mut self.address;
        if a.encoded.is_some() && now_hash != a.written {
            a.written = now_hash.clone();
            a.encoded = None;
            self.apply_link(&now_hash);
        }
        let a = &mut self.address;
        let unchanged = a
            .encoded
            .as_ref()
            .is_some_and(|(s, e)| *s == self.settings && *e == self.embed);
        let too_soon = a
            .last_write
            .is_some_and(|t| t.elapsed().as_secs_f64() < 0.3);
        if unchanged || too_soon {
            return;
        }
        let fragment = url::encode(&self.settings, self.embed);
        a.written = web::replace_hash(&fragment).unwrap_or_else(|| format!("#{fragment}"));
        a.encoded = Some((self.settings.clone(), self.embed));
        a.last_write = Some(Instant::now());
    }

    /// Replaces the drawing with the points of a CSV file (same validation as the
    /// command line), scaled to the common range; a bad file changes nothing.
    pub fn import_csv(&mut self, name: &str, text: &str) {
        let parsed = crate::core::data::parse_csv(text).and_then(|pts| DataSet::user(name, pts));
        match parsed {
            Err(e) => self.say(format!("{name}: {e}")),
            Ok(d) if d.mixture.len() > MAX_IMPORTED => self.say(format!(
                "{name}: {} points; the window takes at most {MAX_IMPORTED}",
                d.mixture.len()
            )),
            Ok(d) => {
                self.settings.drawn = d.mixture.components.iter().map(|c| c.mean).collect();
                self.settings.data = DataChoice::Drawn;
                self.strokes.clear();
                self.notice = Some(format!(
                    "{name}: {} points loaded (centred and scaled to the common range)",
                    self.settings.drawn.len()
                ));
                self.rebuild();
            }
        }
    }

    fn rebuild(&mut self) {
        self.settings.sanitize();
        match Live::build(&self.settings, self.gpu.as_ref()) {
            Ok(mut l) => {
                if let Some(lost) = &self.gpu_lost {
                    l.trainer.badge.reason = format!("{lost}; the CPU engine took over");
                }
                self.live = l;
                self.history = History::default();
                self.picked = None;
            }
            Err(e) => self.notice = Some(format!("cannot start: {e}")),
        }
    }

    /// Brings the engine in line with the settings: a new model if the model key
    /// changed, live updates otherwise.
    fn sync(&mut self) {
        self.settings.sanitize();
        if self.settings.model_key() != self.live.key {
            // A drawing under construction is not a usable data set yet: keep the old
            // model until it has enough points.
            if self.settings.data == DataChoice::Drawn
                && self.settings.drawn.len() < crate::core::data::MIN_POINTS
            {
                return;
            }
            self.rebuild();
            return;
        }
        let c = self.live.trainer.config();
        let live = (self.settings.lr, self.settings.batch, self.settings.ema);
        if (c.lr, c.batch, c.ema) != live {
            match self.live.trainer.set_live(live.0, live.1, live.2) {
                Ok(true) => {}
                // The GPU engine sizes its buffers for one batch: rebuild it.
                Ok(false) => {
                    self.rebuild();
                    return;
                }
                Err(e) => self.notice = Some(e.to_string()),
            }
        }
        if *self.live.particles.config() != self.settings.sampler_config()
            || self.live.particles.x.len() != self.settings.particles
        {
            self.restart_particles();
        }
    }

    fn restart_particles(&mut self) {
        self.live.particles = Particles::with_trajectories(
            self.settings.particles,
            self.settings.sampler_config(),
            48,
        );
        self.live.particles_started = Instant::now();
        self.live.trainer.refresh();
        self.live.particle_params = self.live.trainer.ema_params().to_vec();
        if let Some(g) = self.live.trainer.gpu_trainer() {
            let stale = self.live.gpu_particles.as_ref().is_none_or(|s| {
                s.particle_count() != self.settings.particles as u32
                    || s.config() != &self.settings.sampler_config()
            });
            if stale && let Some(ctx) = &self.gpu {
                match make_gpu_sampler(ctx, &self.settings, &self.live.trainer, &self.live.data) {
                    Ok(s) => {
                        self.live.gpu_particles = Some(s);
                        self.live.gpu_heat_t = None;
                    }
                    Err(e) => self.notice = Some(e),
                }
            }
            if let Some(s) = &mut self.live.gpu_particles {
                s.copy_params_from(g);
                s.restart_with_seed(self.settings.seed);
                // The learned part of the fields follows the new parameters.
                self.live.gpu_heat_t = None;
            }
        }
    }

    /// Gives the GPU up when its device was lost or reported an error: the CPU engine
    /// carries on from the last parameters read back, the particles move to the CPU,
    /// and a notice says so. Nothing else is touched (settings, plots).
    pub fn check_device(&mut self) {
        let Some(problem) = self.gpu.as_ref().and_then(|g| g.problem()) else {
            return;
        };
        self.gpu = None;
        self.gpu_lost = Some(problem.clone());
        self.live.gpu_particles = None;
        self.live.gpu_heat_t = None;
        self.live.gpu_traj_pending = None;
        self.live.gpu_traj = (0, Vec::new());
        let message = if self.live.trainer.is_gpu() {
            let step = self.live.trainer.steps_done();
            match self
                .live
                .trainer
                .to_cpu(format!("{problem}; the CPU engine took over"))
            {
                Ok(t) => {
                    self.live.trainer = t;
                    self.restart_particles();
                    format!(
                        "{problem}: training goes on with the CPU engine from the last parameters read back (step {step})"
                    )
                }
                Err(e) => {
                    self.rebuild();
                    format!("{problem}: the CPU engine starts over ({e})")
                }
            }
        } else {
            format!("{problem}; the CPU engine goes on")
        };
        self.say(message);
    }

    /// Runs (or, on the GPU, queues) `n` training steps; records the losses that are
    /// known and the probes that fall due.
    pub fn train(&mut self, n: u32) {
        let before = self.live.trainer.steps_done();
        let losses = match self.live.trainer.train(n, &self.live.data) {
            Ok(l) => l,
            Err(crate::engine::EngineError::Device(_)) => {
                self.check_device();
                return;
            }
            Err(e) => {
                self.running = false;
                self.live.error = Some(e.to_string());
                self.notice = Some(e.to_string());
                return;
            }
        };
        for (i, loss) in losses.iter().enumerate() {
            let s = before + i as u64 + 1;
            self.history.loss.push([s as f64, *loss as f64]);
            if s.is_multiple_of(PROBE_EVERY) {
                self.live.trainer.refresh();
                let t = &self.live.trainer;
                let p = loss_pair(
                    t.layout(),
                    t.params(),
                    t.config(),
                    &self.live.data,
                    s as u32,
                    PROBE_ROWS,
                );
                self.history
                    .probes
                    .push([s as f64, p.conditional, p.marginal]);
            }
            if s.is_multiple_of(QUALITY_EVERY) {
                self.measure_quality();
            }
        }
    }

    fn measure_quality(&mut self) {
        self.live.trainer.refresh();
        let cfg = crate::engine::sampler::SamplerConfig {
            steps: 50,
            ..Default::default()
        };
        let samples = sampler::sample(self.live.model(), cfg, 1024);
        let q = metrics::evaluate(&self.live.data, &samples, 1);
        let s = self.live.trainer.steps_done() as f64;
        self.history
            .quality
            .push([s, q.sliced_w2, q.sliced_w2_floor]);
    }

    /// Moves the particles towards the chosen t within the frame's budget. A finished
    /// run stays on screen while the next one (with newer parameters) is computed.
    fn advance_particles(&mut self, dt: f64) {
        let steps = self.settings.sample_steps.max(1);
        if self.animating {
            // Sweep from 0 to 1 in about three seconds, never ahead of the particles.
            let next = (self.settings.t + (dt / 3.0) as f32).min(1.0);
            self.settings.t = next.min(self.live.particles.t() + 2.0 / steps as f32);
        }
        let target = (self.settings.t * steps as f32).round() as u32;
        if self.live.gpu_particles.is_some() {
            self.advance_gpu_particles(target, steps);
            return;
        }
        // Going back in time, or a finished run whose model has moved on: start again.
        let finished = self.live.particles.k >= target;
        let stale = self.running
            && finished
            && !self.animating
            && self.live.particles_started.elapsed().as_secs_f64() > 1.5;
        if target < self.live.particles.k || stale {
            self.restart_particles();
        }
        let start = Instant::now();
        let Live {
            trainer,
            particles,
            particle_params,
            shown,
            ..
        } = &mut self.live;
        let model = Model {
            layout: trainer.layout(),
            params: particle_params,
            loss: trainer.config().loss,
            schedule: trainer.config().schedule,
        };
        let budget = (PARTICLE_SHARE * dt).max(PARTICLE_MIN_S);
        while particles.k < target && start.elapsed().as_secs_f64() < budget {
            particles.step(model);
        }
        if particles.k == target && !self.animating {
            *shown = Some((target, particles.x.clone(), particles.traj.clone()));
        }
        if self.animating && particles.done() {
            // Loop: back to noise for the next sweep.
            self.settings.t = 0.0;
        }
    }

    /// The GPU path: queue integration steps towards `target` (a twentieth of a run
    /// per frame at most, so the device queue stays short); nothing is read back.
    fn advance_gpu_particles(&mut self, target: u32, steps: u32) {
        let Some(s) = &self.live.gpu_particles else {
            return;
        };
        let (k, done) = (s.k(), s.k() >= target);
        let stale = self.running
            && done
            && !self.animating
            && self.live.particles_started.elapsed().as_secs_f64() > 1.5;
        if target < k || stale {
            self.restart_particles();
        }
        let heat_t = ((self.settings.t.min(canvas::HEAT_T_MAX)) * 1000.0).round() as u32;
        let Live {
            gpu_particles: Some(s),
            gpu_heat_t,
            gpu_traj,
            gpu_traj_pending,
            ..
        } = &mut self.live
        else {
            return;
        };
        if *gpu_heat_t != Some(heat_t) {
            s.compute_fields(heat_t as f32 / 1000.0);
            *gpu_heat_t = Some(heat_t);
        }
        let k = s.k();
        if k < target {
            s.advance((target - k).min((steps / 20).max(1)));
            // A finished run's paths come back once (a few kilobytes), without waiting.
            if s.k() == target {
                *gpu_traj_pending = Some((target, s.read_trajectories_async()));
            }
        }
        if let Some((k, read)) = gpu_traj_pending
            && read.arrived()
        {
            if let Some(Ok(bytes)) = read.take() {
                *gpu_traj = (*k, bytemuck::pod_collect_to_vec(&bytes));
            }
            *gpu_traj_pending = None;
        }
        if self.animating {
            self.settings.t = self.settings.t.min(s.t());
            if s.done() {
                self.settings.t = 0.0;
            }
        }
    }

    fn emit_status(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last_status
            && now.duration_since(last).as_secs_f64() < 1.0
        {
            return;
        }
        self.last_status = Some(now);
        if !self.status_line {
            return;
        }
        let badge = self.backend_badge();
        let line = json!({
            "renderer": self.renderer,
            "backend": badge.backend,
            "adapter": badge.adapter,
            "reason": badge.reason,
            "step": self.step(),
            "loss": self.recent_loss(20),
            "fps": self.fps,
            "steps_per_second": self.steps_per_second,
            "t": self.settings.t,
            "particles": self.live.particles.x.len(),
            "particle_step": self.live.particles.k,
            "shown_step": self.live.shown.as_ref().map(|s| s.0),
            "dataset": self.settings.data.name(),
            "running": self.running,
            "points": self.live.data.mixture.len(),
            "embed": self.embed,
            "notice": self.notice,
            "settings": url::encode(&Settings { drawn: Vec::new(), ..self.settings.clone() }, self.embed),
        });
        let text = format!("flow-playground status {line}");
        #[cfg(target_arch = "wasm32")]
        web::log(&text);
        #[cfg(not(target_arch = "wasm32"))]
        println!("{text}");
    }

    /// One frame of work: engine updates, training, particles, status.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let dt = self
            .last_frame
            .map_or(1.0 / 60.0, |l| now.duration_since(l).as_secs_f64())
            .clamp(1e-4, 0.25);
        self.last_frame = Some(now);
        self.fps = 0.9 * self.fps + 0.1 / dt;
        self.check_device();
        self.sync();
        self.live.trainer.refresh();
        if self.running {
            let n = self
                .settings
                .steps_per_frame
                .unwrap_or(self.steps_per_frame)
                .max(1);
            let start = Instant::now();
            let before = self.live.trainer.steps_done();
            self.train(n);
            let took = start.elapsed().as_secs_f64().max(1e-6);
            let got = (self.live.trainer.steps_done() - before) as f64;
            self.steps_per_second = 0.8 * self.steps_per_second + 0.2 * got / dt;
            let rate = n as f64 / took;
            // The GPU engine paces itself by its queue; the CPU one by the frame budget.
            if self.settings.steps_per_frame.is_none() && !self.live.trainer.is_gpu() {
                // Whatever the frame spends besides training decides the budget: the
                // rest of a 50 fps frame, or a fixed share when drawing alone is slower.
                let other = (dt - took).max(0.0);
                let budget = if other < FRAME_TARGET_S - TRAIN_MIN_S {
                    FRAME_TARGET_S - other
                } else {
                    (TRAIN_SHARE / (1.0 - TRAIN_SHARE) * other).max(TRAIN_MIN_S)
                };
                let want = (budget * rate).clamp(1.0, 500.0);
                self.steps_per_frame = ((self.steps_per_frame as f64 * 0.7) + want * 0.3)
                    .round()
                    .max(1.0) as u32;
            }
        }
        self.advance_particles(dt);
        self.emit_status();
    }
}

/// What the canvas shows: the last finished run at the chosen t if there is one,
/// else the run in progress (positions and trajectories, `k + 1` rows of paths).
fn shown_particles<'a>(
    live: &'a Live,
    settings: &Settings,
    animating: bool,
) -> (
    &'a [crate::core::path::Vec2],
    &'a [crate::core::path::Vec2],
    u32,
) {
    if live.gpu_particles.is_some() {
        return (&[], &live.gpu_traj.1, live.gpu_traj.0);
    }
    let steps = settings.sample_steps.max(1);
    let target = (settings.t * steps as f32).round() as u32;
    match &live.shown {
        Some((k, x, traj)) if *k == target && !animating && live.particles.k != target => {
            (x, traj, *k)
        }
        _ => (&live.particles.x, &live.particles.traj, live.particles.k),
    }
}

/// Files dropped on the window, as import commands.
#[cfg(not(target_arch = "wasm32"))]
fn dropped_files(ctx: &egui::Context) -> Vec<Command> {
    let files = ctx.input(|i| i.raw.dropped_files.clone());
    files
        .into_iter()
        .map(|f| {
            let name = f.path().file_name().map_or_else(
                || "dropped file".to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            match f.bytes() {
                Ok(b) => Command::ImportCsv {
                    name,
                    text: String::from_utf8_lossy(&b).into_owned(),
                },
                Err(e) => Command::ImportCsv {
                    name: format!("{name} ({e})"),
                    text: String::new(),
                },
            }
        })
        .collect()
}

/// Files dropped on the page are read asynchronously by the browser (web page): their
/// import commands arrive through [`web::take_commands`].
#[cfg(target_arch = "wasm32")]
fn dropped_files(ctx: &egui::Context) -> Vec<Command> {
    web::read_dropped(ctx);
    web::take_commands()
}

/// The graphics API's name as users know it.
fn renderer_name(backend: eframe::egui_wgpu::wgpu::Backend) -> String {
    use eframe::egui_wgpu::wgpu::Backend;
    match backend {
        Backend::BrowserWebGpu => "WebGPU",
        Backend::Gl if cfg!(target_arch = "wasm32") => "WebGL2",
        Backend::Gl => "OpenGL",
        Backend::Vulkan => "Vulkan",
        Backend::Metal => "Metal",
        Backend::Dx12 => "Direct3D 12",
        Backend::Noop => "none",
    }
    .to_string()
}

/// The GPU sampler for the current settings, on the trainer's device.
fn make_gpu_sampler(
    ctx: &GpuContext,
    settings: &Settings,
    trainer: &AppEngine,
    data: &DataSet,
) -> Result<GpuSampler, String> {
    GpuSampler::new(
        ctx.clone(),
        trainer.layout().clone(),
        settings.loss,
        settings.schedule,
        data,
        settings.particles as u32,
        TRAJECTORIES as u32,
        settings.sampler_config(),
        Grid::square(canvas::HEAT_HALF, canvas::HEAT_N),
    )
    .map_err(|e| e.to_string())
}

impl eframe::App for FlowApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        for cmd in controls::keyboard(ctx)
            .into_iter()
            .chain(dropped_files(ctx))
        {
            self.apply(cmd);
        }
        #[cfg(target_arch = "wasm32")]
        self.sync_address();
        self.tick();
        ctx.request_repaint();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let mut commands = Vec::new();
        egui::Panel::top("top").show(ui, |ui| {
            commands.extend(controls::top_bar(ui, self));
        });
        if !self.embed {
            egui::Panel::left("controls")
                .resizable(true)
                .default_size(270.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        commands.extend(controls::side_panel(ui, self));
                    });
                });
        }
        egui::Panel::bottom("plots")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| {
                plots::plots_ui(ui, &self.history, &mut self.settings.log_scale)
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let input = canvas::Input {
                brush: self.brush && self.settings.data == DataChoice::Drawn,
            };
            let scene = canvas::Scene {
                settings: &self.settings,
                data: &self.live.data,
                model: self.live.model(),
                particles: shown_particles(&self.live, &self.settings, self.animating),
                gpu_particles: self
                    .live
                    .gpu_particles
                    .as_ref()
                    .map(|s| (s.particles_buffer().clone(), s.particle_count())),
                gpu_heat: self
                    .live
                    .gpu_particles
                    .as_ref()
                    .filter(|_| self.live.gpu_heat_t.is_some())
                    .map(|s| s.field_buffer().clone()),
                picked: self.picked,
            };
            commands.extend(canvas::canvas_ui(ui, &mut self.view, &scene, input));
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(path) = self.file_dialog.show(ui.ctx()) {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            commands.push(Command::ImportCsv { name, text });
        }
        for c in commands {
            let copy = matches!(c, Command::CopyLink { .. });
            self.apply(c);
            if copy && let Some(link) = &self.copied_link {
                ui.ctx().copy_text(link.clone());
            }
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(&self.settings) {
            storage.set_string(STORAGE_KEY, text);
        }
    }
}

impl FlowApp {
    /// Whether the brush is on (drawing mode).
    pub fn brush(&self) -> bool {
        self.brush
    }

    /// Turns the brush on or off.
    pub fn set_brush(&mut self, on: bool) {
        self.brush = on;
    }

    /// Steps per frame in use (adapted or fixed).
    pub fn steps_per_frame(&self) -> u32 {
        self.settings
            .steps_per_frame
            .unwrap_or(self.steps_per_frame)
    }

    /// Smoothed training speed and frame rate.
    pub fn speeds(&self) -> (f64, f64) {
        (self.steps_per_second, self.fps)
    }

    /// The particle positions the canvas shows.
    pub fn particles_shown(&self) -> &[crate::core::path::Vec2] {
        shown_particles(&self.live, &self.settings, self.animating).0
    }

    /// The averaged parameters the samplers use (a snapshot on the GPU engine).
    pub fn model_params(&self) -> &[f32] {
        self.live.trainer.ema_params()
    }

    /// The last training error, if any.
    pub fn error(&self) -> Option<&str> {
        self.live.error.as_deref()
    }
}
