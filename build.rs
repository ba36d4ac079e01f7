// `sqlx::migrate!` embeds the migrations at compile time; without this, cargo would not rebuild
// when only a file under migrations/ is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
