//! The page around the app (web only): the address bar, the file picker and files
//! dropped on the canvas. Browser reads are asynchronous: their results wait in an
//! inbox that the app empties once per frame.

use std::cell::RefCell;
use std::sync::Arc;

use eframe::egui;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use super::Command;

/// Files larger than this are refused before they are read.
const MAX_FILE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

type Picker = (web_sys::HtmlInputElement, Closure<dyn FnMut()>);

thread_local! {
    static INBOX: RefCell<Vec<Command>> = const { RefCell::new(Vec::new()) };
    static PICKER: RefCell<Option<Picker>> = const { RefCell::new(None) };
}

/// The address's fragment, with its `#` (empty when there is none).
pub fn hash() -> Option<String> {
    web_sys::window()?.location().hash().ok()
}

/// Replaces the fragment without a new history entry; returns the fragment as the
/// browser now reports it.
pub fn replace_hash(fragment: &str) -> Option<String> {
    let window = web_sys::window()?;
    window
        .history()
        .ok()?
        .replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("#{fragment}")),
        )
        .ok()?;
    window.location().hash().ok()
}

/// The page's address without its fragment.
pub fn page_url() -> Option<String> {
    let l = web_sys::window()?.location();
    Some(format!(
        "{}{}{}",
        l.origin().ok()?,
        l.pathname().ok()?,
        l.search().ok()?
    ))
}

/// Commands from finished reads (file picker, dropped files).
pub fn take_commands() -> Vec<Command> {
    INBOX.with(|i| std::mem::take(&mut *i.borrow_mut()))
}

fn post(cmd: Command) {
    INBOX.with(|i| i.borrow_mut().push(cmd));
}

/// Reads a file as text and posts an import command (or the reason it failed).
fn read_file(file: web_sys::File) {
    let name = file.name();
    if file.size() > MAX_FILE_BYTES {
        post(Command::Notice(format!(
            "{name}: {:.0} MB is too large for a point set (at most 16 MB)",
            file.size() / 1e6
        )));
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        let text = wasm_bindgen_futures::JsFuture::from(file.text()).await;
        post(match text.ok().and_then(|v| v.as_string()) {
            Some(text) => Command::ImportCsv { name, text },
            None => Command::Notice(format!("{name}: the browser could not read the file")),
        });
    });
}

/// Files dropped on the canvas (eframe collects them; their bytes come later).
pub fn read_dropped(ctx: &egui::Context) {
    let files: Vec<Arc<dyn egui::DroppedFile + Send + Sync>> =
        ctx.input(|i| i.raw.dropped_files.clone());
    for f in files {
        match f.web_file() {
            Some(file) => read_file(file.clone()),
            None => post(Command::Notice(format!(
                "{}: not a file the page can read",
                f.path().display()
            ))),
        }
    }
}

/// Opens the browser's file picker for a CSV file.
pub fn pick_csv() {
    PICKER.with(|p| {
        let mut p = p.borrow_mut();
        if p.is_none() {
            let Some(input) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.create_element("input").ok())
                .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                post(Command::Notice("the page cannot open a file picker".into()));
                return;
            };
            input.set_type("file");
            input.set_accept(".csv,.txt,text/csv,text/plain");
            let target = input.clone();
            let on_change = Closure::<dyn FnMut()>::new(move || {
                if let Some(file) = target.files().and_then(|f| f.get(0)) {
                    read_file(file);
                }
                // Picking the same file again must fire another change.
                target.set_value("");
            });
            input.set_onchange(Some(on_change.as_ref().unchecked_ref()));
            *p = Some((input, on_change));
        }
        if let Some((input, _)) = p.as_ref() {
            input.click();
        }
    });
}

/// A line in the developer console.
pub fn log(text: &str) {
    web_sys::console::log_1(&text.into());
}

/// Offers `text` as a file download named `name`.
pub fn download(name: &str, text: &str) -> Result<(), String> {
    let fail = |what: &str| format!("{name}: the browser refused the download ({what})");
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| fail("no document"))?;
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/csv");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| fail("blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("url"))?;
    let a = document
        .create_element("a")
        .ok()
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        .ok_or_else(|| fail("link"))?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
