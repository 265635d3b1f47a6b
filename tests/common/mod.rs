//! Helpers shared by the integration tests.

use flow_playground::gpu::context::GpuContext;

/// A headless device with `Limits::default()`, or `None` (and a note) when there is
/// no adapter. With FLOW_PLAYGROUND_REQUIRE_GPU set (CI), no adapter is a failure.
pub fn gpu() -> Option<GpuContext> {
    match GpuContext::headless(false) {
        Ok(ctx) => {
            println!("adapter: {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            if std::env::var_os("FLOW_PLAYGROUND_REQUIRE_GPU").is_some() {
                panic!("FLOW_PLAYGROUND_REQUIRE_GPU is set but no GPU is usable: {e}");
            }
            eprintln!("SKIPPED: no GPU adapter ({e})");
            None
        }
    }
}
