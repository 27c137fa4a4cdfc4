use tracing_subscriber::EnvFilter;

/// mimalloc instead of the C library's allocator: the server and the
/// projector allocate on one thread and free on another all the time
/// (requests, read-ahead batches), which glibc's arenas handle poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))).init();
    if let Err(e) = ledger_api::cli::run(ledger_api::cli::Cli::from_env_and_args()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
