//! The `bots` binary: tickwire's load tool. Flags in, exit status out; everything else is in
//! [`load`] (see its docs, and the README's Benchmarks section).

mod load;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = load::cli::Args::parse();
    match load::main(args).await {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("bots: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
