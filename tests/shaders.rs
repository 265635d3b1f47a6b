//! Every shader module parses and validates with naga: no GPU needed.

use flow_playground::gpu::shaders::{self, GemmShape};

fn validate(src: &str) -> naga::Module {
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
    module
}

fn has_entries(module: &naga::Module, want: &[&str]) {
    let entries: Vec<&str> = module
        .entry_points
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for w in want {
        assert!(entries.contains(w), "missing entry point {w}");
    }
}

#[test]
fn both_modules_parse_and_validate_in_both_variants() {
    for software in [false, true] {
        let shape = GemmShape::for_adapter(software);
        let module = validate(&shaders::training_source(shape));
        has_entries(
            &module,
            &[
                "sample_batch",
                "gemm",
                "gemm_small",
                "loss_head",
                "loss_sum",
                "adam",
                "advance",
            ],
        );
        let module = validate(&shaders::sampling_source(shape));
        has_entries(
            &module,
            &[
                "prior",
                "features",
                "gemm",
                "gemm_small",
                "integrate",
                "advance_particles",
                "grid_store",
                "exact_marginal",
                "histogram",
                "field_max",
            ],
        );
    }
}

#[test]
fn the_render_shaders_validate() {
    for src in [shaders::POINTS, shaders::HEAT] {
        let module = validate(src);
        has_entries(&module, &["vs", "fs"]);
    }
}

#[test]
fn every_shader_file_is_in_a_module() {
    let shape = GemmShape::for_adapter(false);
    let src = shaders::training_source(shape)
        + &shaders::sampling_source(shape)
        + shaders::POINTS
        + shaders::HEAT;
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
