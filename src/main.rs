//! Entry points: natively, `flow-playground` opens the window and
//! `flow-playground <command>` runs the headless command line.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        std::process::exit(flow_playground::cli::main(&args));
    }
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Flow Playground")
            .with_inner_size([1280.0, 820.0])
            .with_min_inner_size([720.0, 480.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "Flow Playground",
        options,
        Box::new(|cc| {
            Ok(Box::new(
                flow_playground::app::FlowApp::from_creation_context(cc),
            ))
        }),
    );
    if let Err(e) = result {
        eprintln!("error: could not open the window: {e}");
        eprintln!("(the command line still works: flow-playground help)");
        std::process::exit(1);
    }
}

/// Web entry: starts the app on the page's canvas, removes the loading text, or says in
/// words that the app could not start.
#[cfg(target_arch = "wasm32")]
fn main() {
    use wasm_bindgen::JsCast as _;
    wasm_bindgen_futures::spawn_local(async {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let say = |text: &str| {
            if let Some(el) = document.get_element_by_id("loading_text") {
                el.set_inner_html(text);
            }
        };
        let Some(canvas) = document
            .get_element_by_id("the_canvas_id")
            .and_then(|c| c.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            say("<p>Flow Playground could not find its canvas.</p>");
            return;
        };
        let started = eframe::WebRunner::new()
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(|cc| {
                    Ok(Box::new(
                        flow_playground::app::FlowApp::from_creation_context(cc),
                    ))
                }),
            )
            .await;
        match started {
            Ok(()) => {
                if let Some(el) = document.get_element_by_id("loading_text") {
                    el.remove();
                }
                web_sys::console::log_1(&"flow-playground started".into());
            }
            Err(e) => {
                say(
                    "<p>Flow Playground could not start: this browser may lack WebGL2 and WebGPU. See the developer console for details.</p>",
                );
                web_sys::console::error_1(&e);
            }
        }
    });
}
