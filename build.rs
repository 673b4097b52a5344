//! Rebuilds the binary when a migration changes, since migrations are embedded with
//! `sqlx::migrate!`.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
