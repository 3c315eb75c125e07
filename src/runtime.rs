//! The one async runtime builder of the front ends (CLI commands, run,
//! console, lab, demo): multi-thread with two workers, IO and time on.
//! Builds only; never spawns or blocks on anything itself.

/// The runtime every front end blocks on.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
