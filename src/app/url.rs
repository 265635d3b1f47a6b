//! Every setting in the page address, as `#data=moons&loss=cfm&width=128&...`.
//!
//! [`encode`] writes all settings (the user's points too, when they are the data);
//! [`decode`] reads an address written by hand or by an older version: each key it
//! does not know and each value it cannot use is named in [`Decoded::ignored`] and that
//! setting keeps its default, so a shared link never fails as a whole.

use super::state::{ArrowKind, DataChoice, Layers, Settings};
use crate::core::data::{MIN_POINTS, Toy};
use crate::core::path::{Loss, Vec2};
use crate::core::schedule::{Schedule, SigmaMode};
use crate::engine::BackendChoice;
use crate::engine::sampler::SamplerKind;
use crate::nn::layout::{Activation, TimeFeatures};

/// The most points an address carries (about 11 characters each).
pub const MAX_LINK_POINTS: usize = 20_000;

/// What an address holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The settings: the address's values, defaults for the rest.
    pub settings: Settings,
    /// The embed flag: canvas and plots only, for slides.
    pub embed: bool,
    /// Whether the address named any setting at all (else stored settings apply).
    pub has_settings: bool,
    /// What was not applied, each as `key=value (why)`.
    pub ignored: Vec<String>,
}

impl Decoded {
    /// The notice for the user, if anything was ignored.
    pub fn notice(&self) -> Option<String> {
        if self.ignored.is_empty() {
            return None;
        }
        Some(format!(
            "link: ignored {}; defaults used instead",
            self.ignored.join(", ")
        ))
    }
}

type Getter = fn(&Settings) -> String;
type Setter = fn(&mut Settings, &str) -> Result<(), String>;

/// One setting of the address: its key, how to write it and how to read it.
struct Field {
    key: &'static str,
    get: Getter,
    set: Setter,
}

fn number<T>(v: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let x: T = v.parse().map_err(|_| "not a number".to_string())?;
    // NaN fails both comparisons and is refused with the range.
    if x >= lo && x <= hi {
        Ok(x)
    } else {
        Err(format!("outside [{lo}, {hi}]"))
    }
}

fn parsed<T: std::str::FromStr<Err = String>>(v: &str) -> Result<T, String> {
    v.parse::<T>()
}

/// Shortest text that reads back as the same f32.
fn float(x: f32) -> String {
    format!("{x}")
}

/// A layer's switch inside [`Layers`].
type LayerSwitch = fn(&mut Layers) -> &mut bool;

/// The layers of `show=`, in order.
const SHOW: [(&str, LayerSwitch); 6] = [
    ("data", |l| &mut l.data),
    ("density", |l| &mut l.density),
    ("learned", |l| &mut l.learned_arrows),
    ("exact", |l| &mut l.exact_arrows),
    ("particles", |l| &mut l.particles),
    ("paths", |l| &mut l.trajectories),
];

fn fields() -> Vec<Field> {
    vec![
        Field {
            key: "data",
            get: |s| s.data.name().to_string(),
            set: |s, v| {
                s.data = if v == "drawn" {
                    DataChoice::Drawn
                } else {
                    DataChoice::Toy(parsed::<Toy>(v)?)
                };
                Ok(())
            },
        },
        Field {
            key: "loss",
            get: |s| s.loss.to_string(),
            set: |s, v| {
                s.loss = parsed::<Loss>(v)?;
                Ok(())
            },
        },
        Field {
            key: "schedule",
            get: |s| s.schedule.to_string(),
            set: |s, v| {
                s.schedule = parsed::<Schedule>(v)?;
                Ok(())
            },
        },
        Field {
            key: "width",
            get: |s| s.width.to_string(),
            set: |s, v| {
                s.width = number(v, 8, 512)?;
                Ok(())
            },
        },
        Field {
            key: "depth",
            get: |s| s.depth.to_string(),
            set: |s, v| {
                s.depth = number(v, 1, 6)?;
                Ok(())
            },
        },
        Field {
            key: "act",
            get: |s| s.activation.to_string(),
            set: |s, v| {
                s.activation = parsed::<Activation>(v)?;
                Ok(())
            },
        },
        Field {
            key: "time",
            get: |s| s.time.to_string(),
            set: |s, v| {
                s.time = parsed::<TimeFeatures>(v)?;
                Ok(())
            },
        },
        Field {
            key: "lr",
            get: |s| float(s.lr),
            set: |s, v| {
                s.lr = number(v, 1e-5, 0.1)?;
                Ok(())
            },
        },
        Field {
            key: "batch",
            get: |s| s.batch.to_string(),
            set: |s, v| {
                s.batch = number(v, 16, 8192)?;
                Ok(())
            },
        },
        Field {
            key: "ema",
            get: |s| float(s.ema),
            set: |s, v| {
                s.ema = number(v, 0.0, 0.999)?;
                Ok(())
            },
        },
        Field {
            key: "seed",
            get: |s| s.seed.to_string(),
            set: |s, v| {
                s.seed = number(v, 0, u32::MAX)?;
                Ok(())
            },
        },
        Field {
            key: "sampler",
            get: |s| s.sampler.to_string(),
            set: |s, v| {
                s.sampler = parsed::<SamplerKind>(v)?;
                Ok(())
            },
        },
        Field {
            key: "sigma",
            get: |s| float(s.sigma),
            set: |s, v| {
                s.sigma = number(v, 0.0, 3.0)?;
                Ok(())
            },
        },
        Field {
            key: "sigma_t",
            get: |s| s.sigma_mode.to_string(),
            set: |s, v| {
                s.sigma_mode = parsed::<SigmaMode>(v)?;
                Ok(())
            },
        },
        Field {
            key: "steps",
            get: |s| s.sample_steps.to_string(),
            set: |s, v| {
                s.sample_steps = number(v, 5, 1000)?;
                Ok(())
            },
        },
        Field {
            key: "particles",
            get: |s| s.particles.to_string(),
            set: |s, v| {
                s.particles = number(v, 100, 200_000)?;
                Ok(())
            },
        },
        Field {
            key: "t",
            get: |s| float(s.t),
            set: |s, v| {
                s.t = number(v, 0.0, 1.0)?;
                Ok(())
            },
        },
        Field {
            key: "arrows",
            get: |s| match s.layers.arrow_kind {
                ArrowKind::Field => "field".into(),
                ArrowKind::Score => "score".into(),
            },
            set: |s, v| {
                s.layers.arrow_kind = match v {
                    "field" => ArrowKind::Field,
                    "score" => ArrowKind::Score,
                    _ => return Err("expected field or score".into()),
                };
                Ok(())
            },
        },
        Field {
            key: "show",
            get: |s| {
                let mut layers = s.layers.clone();
                let on: Vec<&str> = SHOW
                    .iter()
                    .filter(|(_, f)| *f(&mut layers))
                    .map(|(k, _)| *k)
                    .collect();
                if on.is_empty() {
                    "none".into()
                } else {
                    on.join(",")
                }
            },
            set: |s, v| {
                let mut layers = Layers {
                    arrow_kind: s.layers.arrow_kind,
                    ..Layers::default()
                };
                for (_, f) in SHOW {
                    *f(&mut layers) = false;
                }
                for name in v.split(',').filter(|n| !n.is_empty() && *n != "none") {
                    let Some((_, f)) = SHOW.iter().find(|(k, _)| *k == name) else {
                        let names: Vec<&str> = SHOW.iter().map(|(k, _)| *k).collect();
                        return Err(format!(
                            "unknown layer '{name}' (known: {})",
                            names.join(" ")
                        ));
                    };
                    *f(&mut layers) = true;
                }
                s.layers = layers;
                Ok(())
            },
        },
        Field {
            key: "spf",
            get: |s| s.steps_per_frame.map_or("auto".into(), |n| n.to_string()),
            set: |s, v| {
                s.steps_per_frame = if v == "auto" {
                    None
                } else {
                    Some(number(v, 1, 500)?)
                };
                Ok(())
            },
        },
        Field {
            key: "log",
            get: |s| u8::from(s.log_scale).to_string(),
            set: |s, v| {
                s.log_scale = flag(v)?;
                Ok(())
            },
        },
        Field {
            key: "backend",
            get: |s| s.backend.to_string(),
            set: |s, v| {
                s.backend = parsed::<BackendChoice>(v)?;
                Ok(())
            },
        },
        Field {
            key: "pts",
            get: |s| points_text(&s.drawn),
            set: |s, v| {
                s.drawn = parse_points(v)?;
                Ok(())
            },
        },
    ]
}

fn flag(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err("expected 1 or 0".into()),
    }
}

/// Points as `x,y;x,y;...` with two decimals (a hundredth of the data's scale).
fn points_text(points: &[Vec2]) -> String {
    let short = |x: f32| {
        let t = format!("{:.2}", x);
        let t = t.trim_end_matches('0').trim_end_matches('.');
        match t {
            "-0" | "" => "0".to_string(),
            _ => t.to_string(),
        }
    };
    let mut out = String::with_capacity(points.len() * 11);
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(&short(p[0]));
        out.push(',');
        out.push_str(&short(p[1]));
    }
    out
}

fn parse_points(v: &str) -> Result<Vec<Vec2>, String> {
    let mut out = Vec::new();
    for (i, pair) in v.split(';').filter(|p| !p.is_empty()).enumerate() {
        let bad = || format!("point {} ('{pair}') is not x,y", i + 1);
        let (x, y) = pair.split_once(',').ok_or_else(bad)?;
        let x: f32 = x.parse().map_err(|_| bad())?;
        let y: f32 = y.parse().map_err(|_| bad())?;
        if !(x.is_finite() && y.is_finite() && x.abs() <= 100.0 && y.abs() <= 100.0) {
            return Err(format!("point {} is out of range", i + 1));
        }
        out.push([x, y]);
        if out.len() > MAX_LINK_POINTS {
            return Err(format!("more than {MAX_LINK_POINTS} points"));
        }
    }
    Ok(out)
}

/// `%XX` escapes decoded; `None` for a broken escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Shortens a value for a message.
fn clip(v: &str) -> String {
    if v.chars().count() > 24 {
        format!("{}...", v.chars().take(24).collect::<String>())
    } else {
        v.to_string()
    }
}

/// The address fragment (without `#`) for these settings.
pub fn encode(settings: &Settings, embed: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    for f in fields() {
        if f.key == "pts" && (settings.data != DataChoice::Drawn || settings.drawn.is_empty()) {
            continue;
        }
        parts.push(format!("{}={}", f.key, (f.get)(settings)));
    }
    if embed {
        parts.push("embed=1".into());
    }
    parts.join("&")
}

/// Reads an address fragment (with or without `#`).
pub fn decode(hash: &str) -> Decoded {
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    let fields = fields();
    let mut settings = Settings::default();
    let mut embed = false;
    let mut has_settings = false;
    let mut ignored = Vec::new();
    for pair in hash.split('&').filter(|p| !p.is_empty()) {
        let Some(pair) = percent_decode(pair) else {
            ignored.push(format!("'{}' (bad % escape)", clip(pair)));
            continue;
        };
        let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
        if key == "embed" {
            match flag(if value.is_empty() { "1" } else { value }) {
                Ok(b) => embed = b,
                Err(e) => ignored.push(format!("embed={} ({e})", clip(value))),
            }
            continue;
        }
        let Some(field) = fields.iter().find(|f| f.key == key) else {
            ignored.push(format!("'{}' (unknown setting)", clip(key)));
            continue;
        };
        has_settings = true;
        let before = settings.clone();
        if let Err(e) = (field.set)(&mut settings, value) {
            settings = before;
            ignored.push(format!("{key}={} ({e})", clip(value)));
        }
    }
    if settings.data == DataChoice::Drawn && settings.drawn.len() < MIN_POINTS {
        ignored.push(format!(
            "data=drawn (needs at least {MIN_POINTS} points in pts)"
        ));
        settings.data = Settings::default().data;
    }
    if settings.data != DataChoice::Drawn {
        // Points only travel with data=drawn; stray ones are dropped.
        settings.drawn.clear();
    }
    Decoded {
        settings,
        embed,
        has_settings,
        ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::presets;

    #[test]
    fn every_preset_survives_the_round_trip() {
        for (name, s) in presets() {
            let text = encode(&s, false);
            let back = decode(&text);
            assert!(back.ignored.is_empty(), "{name}: {:?}", back.ignored);
            assert!(back.has_settings);
            let mut want = s.clone();
            // Points travel with two decimals.
            for p in &mut want.drawn {
                *p = [
                    (p[0] * 100.0).round() / 100.0,
                    (p[1] * 100.0).round() / 100.0,
                ];
            }
            for (a, b) in back.settings.drawn.iter().zip(&want.drawn) {
                assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
            }
            let drawn = back.settings.drawn.clone();
            assert_eq!(
                Settings {
                    drawn: drawn.clone(),
                    ..back.settings
                },
                Settings { drawn, ..s },
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn non_default_values_round_trip() {
        let s = Settings {
            data: DataChoice::Toy(Toy::Checkerboard),
            loss: Loss::Dsm,
            schedule: Schedule::Poly(2.5),
            width: 64,
            depth: 5,
            activation: Activation::Tanh,
            time: TimeFeatures::Raw,
            lr: 3e-4,
            batch: 333,
            ema: 0.0,
            seed: 4_000_000_000,
            sampler: SamplerKind::Heun,
            sigma: 1.25,
            sigma_mode: SigmaMode::Const,
            sample_steps: 37,
            particles: 12345,
            t: 0.37,
            layers: Layers {
                data: false,
                density: true,
                learned_arrows: false,
                arrow_kind: ArrowKind::Score,
                exact_arrows: true,
                particles: false,
                trajectories: true,
            },
            steps_per_frame: Some(17),
            log_scale: false,
            backend: BackendChoice::Cpu,
            drawn: Vec::new(),
        };
        let text = encode(&s, true);
        let back = decode(&format!("#{text}"));
        assert_eq!(back.settings, s, "{text}");
        assert!(back.embed);
        assert!(back.ignored.is_empty());
        let none = Settings {
            layers: Layers {
                data: false,
                density: false,
                learned_arrows: false,
                exact_arrows: false,
                particles: false,
                trajectories: false,
                ..Layers::default()
            },
            ..Settings::default()
        };
        assert_eq!(decode(&encode(&none, false)).settings, none);
    }

    #[test]
    fn missing_keys_take_defaults_and_hand_written_links_work() {
        let d = decode("#data=8gaussians&loss=dsm-eps&width=64");
        assert!(d.ignored.is_empty());
        assert_eq!(d.settings.data, DataChoice::Toy(Toy::EightGaussians));
        assert_eq!(d.settings.loss, Loss::DsmEps);
        assert_eq!(d.settings.width, 64);
        assert_eq!(d.settings.depth, Settings::default().depth);
        assert!(!d.embed);
        // Escaped characters are read.
        assert_eq!(
            decode("schedule=poly%3A3").settings.schedule,
            Schedule::Poly(3.0)
        );
        let e = decode("#embed");
        assert!(e.embed && !e.has_settings && e.ignored.is_empty());
        let empty = decode("");
        assert!(!empty.has_settings && empty.ignored.is_empty());
        assert_eq!(empty.settings, Settings::default());
    }

    #[test]
    fn garbage_is_named_and_falls_back_to_defaults() {
        let d = decode(
            "#width=abc&depth=99&foo=bar&data=nope&lr=NaN&t=2&show=data,sparkles&x%zz=1&pts=1,2;oops&sampler=ode&&=",
        );
        let defaults = Settings::default();
        assert_eq!(d.settings.width, defaults.width);
        assert_eq!(d.settings.depth, defaults.depth);
        assert_eq!(d.settings.data, defaults.data);
        assert_eq!(d.settings.lr, defaults.lr);
        assert_eq!(d.settings.t, defaults.t);
        assert_eq!(d.settings.layers, defaults.layers);
        let text = d.ignored.join(" | ");
        for needle in [
            "width=abc (not a number)",
            "depth=99 (outside [1, 6])",
            "'foo' (unknown setting)",
            "data=nope",
            "lr=NaN",
            "t=2",
            "sparkles",
            "bad % escape",
            "pts=",
            "'' (unknown setting)",
        ] {
            assert!(text.contains(needle), "'{needle}' missing from: {text}");
        }
        let notice = d.notice().expect("a notice");
        assert!(notice.starts_with("link: ignored "), "{notice}");
        // A drawing without points is not usable.
        let d = decode("data=drawn&pts=1,1;2,2");
        assert_eq!(d.settings.data, Settings::default().data);
        assert!(d.ignored.iter().any(|m| m.contains("data=drawn")));
        // Long values are shortened in the message.
        let d = decode(&format!("width={}", "9".repeat(500)));
        assert!(d.ignored[0].len() < 80, "{}", d.ignored[0]);
    }

    #[test]
    fn drawn_points_travel_with_the_link() {
        let pts: Vec<Vec2> = (0..50).map(|i| [i as f32 * 0.05 - 1.0, -0.5]).collect();
        let s = Settings {
            data: DataChoice::Drawn,
            drawn: pts.clone(),
            ..Settings::default()
        };
        let text = encode(&s, false);
        assert!(text.contains("pts=-1,-0.5;-0.95,-0.5;"), "{text}");
        let back = decode(&text);
        assert_eq!(back.settings.data, DataChoice::Drawn);
        assert_eq!(back.settings.drawn.len(), 50);
        for (a, b) in back.settings.drawn.iter().zip(&pts) {
            assert!((a[0] - b[0]).abs() <= 0.005 + 1e-6 && (a[1] - b[1]).abs() <= 0.005 + 1e-6);
        }
        // Toy data sets carry no points.
        assert!(!encode(&Settings::default(), false).contains("pts="));
    }
}
