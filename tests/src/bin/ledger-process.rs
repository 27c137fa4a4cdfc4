//! The `ledger` program, built with the tests so that the process tests
//! (`ledger_tests::process`) always run the code under test: the same
//! entry point as `api/src/main.rs`, with the system allocator.

#[tokio::main]
async fn main() {
    ledger_api::cli::main().await
}
