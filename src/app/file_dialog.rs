//! A small file dialog for CSV import on the desktop: folders and `.csv` / `.txt`
//! files of one directory at a time, inside the window (no platform dialog needed).

#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use eframe::egui;

/// The dialog's state.
pub struct FileDialog {
    /// Whether it is shown.
    pub open: bool,
    dir: PathBuf,
    entries: Vec<(String, bool)>,
    error: Option<String>,
}

impl Default for FileDialog {
    fn default() -> Self {
        Self::at(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")))
    }
}

impl FileDialog {
    /// A closed dialog that starts in `dir`.
    pub fn at(dir: &Path) -> Self {
        let mut d = FileDialog {
            open: false,
            dir: PathBuf::new(),
            entries: Vec::new(),
            error: None,
        };
        d.enter(dir);
        d
    }

    fn enter(&mut self, dir: &Path) {
        match std::fs::read_dir(dir) {
            Ok(rd) => {
                let mut entries: Vec<(String, bool)> = rd
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let is_dir = e.file_type().ok()?.is_dir();
                        let wanted = is_dir
                            || name.ends_with(".csv")
                            || name.ends_with(".txt")
                            || name.ends_with(".CSV");
                        (wanted && !name.starts_with('.')).then_some((name, is_dir))
                    })
                    .collect();
                entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                self.entries = entries;
                self.dir = dir.to_path_buf();
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{}: {e}", dir.display())),
        }
    }

    /// Shows the dialog when open; returns the chosen file.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<PathBuf> {
        if !self.open {
            return None;
        }
        let mut chosen = None;
        let mut open = self.open;
        let mut go: Option<PathBuf> = None;
        egui::Window::new("Open a CSV file")
            .open(&mut open)
            .default_size([420.0, 360.0])
            .show(ctx, |ui| {
                ui.label(self.dir.display().to_string());
                if let Some(e) = &self.error {
                    ui.colored_label(egui::Color32::from_rgb(255, 160, 80), e);
                }
                ui.separator();
                egui::ScrollArea::vertical()
                    .max_height(280.0)
                    .show(ui, |ui| {
                        if let Some(parent) = self.dir.parent()
                            && ui.selectable_label(false, "..").clicked()
                        {
                            go = Some(parent.to_path_buf());
                        }
                        for (name, is_dir) in &self.entries {
                            let label = if *is_dir {
                                format!("{name}/")
                            } else {
                                name.clone()
                            };
                            if ui.selectable_label(false, label).clicked() {
                                let p = self.dir.join(name);
                                if *is_dir {
                                    go = Some(p);
                                } else {
                                    chosen = Some(p);
                                }
                            }
                        }
                    });
                ui.small("x,y per line; a header line is optional.");
            });
        if let Some(d) = go {
            self.enter(&d);
        }
        self.open = open && chosen.is_none();
        chosen
    }
}
