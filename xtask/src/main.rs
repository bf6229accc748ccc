//! See `xtask/src/lib.rs`.

fn main() -> std::process::ExitCode {
    xtask::main()
}
