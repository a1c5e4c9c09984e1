// `embed_migrations!` reads the migration folders at compile time, but cargo only tracks the
// files it includes: without this, a new migration folder would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
