/// mimalloc instead of the C library's allocator: the server and the
/// projector allocate on one thread and free on another all the time
/// (requests, read-ahead batches), which glibc's arenas handle poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    ledger_api::cli::main().await
}
