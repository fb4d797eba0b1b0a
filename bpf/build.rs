//! Compiles the BPF programs with clang and generates the ABI layout constants.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["steer", "decap", "pass", "toa"];
/// The benchmark's own programs (the `bench` feature).
const BENCH_PROGRAMS: &[&str] = &["trafgen", "sink", "fwd"];

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let include = root.join("include");
    // libbpf-sys installs the libbpf headers it vendors (bpf_helpers.h, ...).
    let libbpf_include = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its headers");
    // Debian keeps asm/types.h under the multiarch directory, which clang -target bpf
    // does not search by itself.
    let multiarch = format!(
        "/usr/include/{}-linux-gnu",
        env::var("CARGO_CFG_TARGET_ARCH").unwrap()
    );

    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let bench = env::var_os("CARGO_FEATURE_BENCH").is_some();
    let benches = BENCH_PROGRAMS.iter().filter(|_| bench);
    for prog in PROGRAMS.iter().chain(benches) {
        let src = root.join("src").join(format!("{prog}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let obj = out.join(format!("{prog}.bpf.o"));
        run(
            Command::new(&clang)
                .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
                .arg(format!("-I{}", include.display()))
                .arg(format!("-I{libbpf_include}"))
                .arg(format!("-I{multiarch}"))
                .arg("-c")
                .arg(&src)
                .arg("-o")
                .arg(&obj),
            "clang (install it with `make setup`)",
        );
    }

    let probe_src = root.join("src/abi_probe.c");
    println!("cargo:rerun-if-changed={}", probe_src.display());
    let probe = out.join("abi_probe");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    run(
        Command::new(cc)
            .arg(format!("-I{}", include.display()))
            .arg(&probe_src)
            .arg("-o")
            .arg(&probe),
        "the host C compiler",
    );
    let layout = Command::new(&probe).output().expect("run abi_probe");
    assert!(layout.status.success(), "abi_probe failed");
    std::fs::write(out.join("abi_layout.rs"), layout.stdout).expect("write abi_layout.rs");
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(status.success(), "{what} failed: {cmd:?}");
}
