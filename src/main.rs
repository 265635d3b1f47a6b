//! Native entry: `flow-playground <command>` runs the headless command line.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(flow_playground::cli::main(&args));
}
