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

#[cfg(target_arch = "wasm32")]
fn main() {}
