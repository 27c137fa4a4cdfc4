//! `sqlx::migrate!` embeds the migration files at build time; a changed or
//! added file must rebuild this crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
