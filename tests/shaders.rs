//! Every shader module parses and validates with naga: no GPU needed.

use flow_playground::gpu::shaders;

#[test]
fn training_module_parses_and_validates() {
    for software in [false, true] {
        validate(&shaders::training_source(shaders::GemmShape::for_adapter(
            software,
        )));
    }
}

fn validate(src: &str) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| {
        panic!("{}", e.emit_to_string(src));
    });
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    validator
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
    let entries: Vec<&str> = module
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for want in [
        "sample_batch",
        "gemm",
        "loss_head",
        "loss_sum",
        "adam",
        "advance",
    ] {
        assert!(entries.contains(&want), "missing entry point {want}");
    }
}

#[test]
fn every_shader_file_is_in_the_module() {
    let src = shaders::training_source(shaders::GemmShape::for_adapter(false));
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")).expect("shaders/")
    {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let text = std::fs::read_to_string(&path).expect("readable");
            assert!(
                src.contains(&text),
                "{} is not assembled into any module",
                path.display()
            );
        }
    }
}
