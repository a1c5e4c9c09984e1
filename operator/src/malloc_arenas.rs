//! glibc's malloc gives threads their own arenas (up to 8 per core), and memory freed in one is not
//! reused by another. With a SQLite store, whose page caches live in pedia and whose writer runs on
//! whichever blocking thread is free, the arenas kept a large share of pedia's peak RSS; two keep
//! it close to what is used. (With a database server the saving is small and the sync engine was
//! slower with two, so those keep glibc's default.) glibc reads the limit from the environment
//! before `main` runs, so pedia executes itself again once with it set; an explicit
//! `MALLOC_ARENA_MAX` is kept.

/// The environment variable glibc reads.
pub const VAR: &str = "MALLOC_ARENA_MAX";

/// The arenas pedia runs with unless told otherwise.
pub const ARENAS: &str = "2";

/// The binary to execute again: the file this process runs (so the process keeps its name,
/// `pedia`, in `ps` and for `pkill`: executed as `/proc/self/exe` it is named `exe`), or
/// `/proc/self/exe` when that file is gone (replaced or removed by an upgrade in place), which
/// still names this binary.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn program() -> std::path::PathBuf {
    match std::env::current_exe() {
        Ok(path) if path.is_file() => path,
        _ => "/proc/self/exe".into(),
    }
}

/// Re-executes the process with [`VAR`] set when it is not; returns only when it was set already,
/// the platform is not glibc, or the re-execution failed (then glibc's default applies).
pub fn limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(VAR).is_some() {
            return;
        }
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_default();
        let failed = std::process::Command::new(program()).arg0(arg0).args(args).env(VAR, ARENAS).exec();
        // exec returns only on failure; logging is not set up yet.
        eprintln!("pedia: running with glibc's default malloc arenas ({VAR} not applied: {failed})");
    }
}
