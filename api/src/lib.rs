//! The ledger's service: HTTP API, WebAuthn ceremonies, e-mail, staff
//! authentication and the `ledger` command line.

pub mod bus;
pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod console;
pub mod email;
pub mod environment;
pub mod error;
pub mod export;
pub mod filters;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod otp;
pub mod proofs;
pub mod secrets;
pub mod server;
pub mod state;
pub mod storage;
pub mod streams;
pub mod throttle;
pub mod webauthn;
