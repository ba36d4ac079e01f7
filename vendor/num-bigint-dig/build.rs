fn main() {
    // kyso patch: declare the cfg, so a path dependency builds without 79 warnings.
    println!("cargo:rustc-check-cfg=cfg(has_i128)");
    println!("cargo:rustc-cfg=has_i128");
}
