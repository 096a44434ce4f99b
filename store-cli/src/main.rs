//! `storectl`: see the store-cli crate docs, or `storectl --help`.

use clap::Parser;

fn main() {
    // Usage errors exit with status 2 (clap's), --help and --version with 0.
    let cli = store_cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("storectl: starting the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let outcome = store_cli::run(cli, &mut out).await;
        let flushed = std::io::Write::flush(&mut out);
        outcome.and(flushed.map_err(|source| store_cli::CliError::Io {
            context: "writing to",
            path: "stdout".into(),
            source,
        }))
    });
    if let Err(error) = outcome {
        eprintln!("storectl: {error}");
        std::process::exit(error.exit_code());
    }
}
