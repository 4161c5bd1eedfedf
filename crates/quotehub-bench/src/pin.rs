//! `--pin`: each server process on one core, the bench (feed and clients)
//! on the others, so that a server's deliveries/s and CPU per delivery are
//! per core and the clients never take the server's core.
//!
//! How: the bench pins its own main thread to the bench cores before it
//! starts any thread (threads inherit the mask of the thread that creates
//! them), and a child inherits the mask of the thread that forks it, so each
//! server is spawned from a short-lived thread of its own pinned to the
//! server core ([`spawn`]). That pins every thread the server ever starts,
//! which setting the mask of a running child's pid (its main thread only)
//! would not, and no bench thread ever runs on the server core.
//! `sched_setaffinity` through `rustix` (already the bench's safe wrapper of
//! `getrlimit` and the process clock): no `unsafe`, no `libc`, no `taskset`.

use std::process::{Child, Command};
use std::sync::OnceLock;

use anyhow::Context;
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// Which CPUs the servers and the bench run on.
#[derive(Debug, Clone)]
pub struct Pinning {
    /// The one CPU every server process runs on.
    pub server: usize,
    /// The CPUs of the bench's feed and clients (every other allowed CPU).
    pub bench: Vec<usize>,
}

/// The name of the short-lived thread that spawns a pinned server (the
/// one bench thread on the server CPU, for as long as a spawn takes).
pub const SPAWNER: &str = "pinned-spawn";

/// Set once, by [`pin_this_run`], before any thread or child starts: the
/// pinning is a property of the whole run, and every child spawned in it
/// goes through [`spawn`].
static PINNING: OnceLock<Pinning> = OnceLock::new();

impl Pinning {
    /// One line for reports: "pinned: servers on CPU 0, feed and clients on CPU 1".
    pub fn describe(&self) -> String {
        let bench: Vec<String> = self.bench.iter().map(ToString::to_string).collect();
        format!(
            "pinned: each server on CPU {}, the feed and clients on CPU {}",
            self.server,
            bench.join(",")
        )
    }
}

fn set(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu);
    }
    sched_setaffinity(None, &set).with_context(|| format!("setting this thread's CPU affinity to {cpus:?}"))
}

/// Pins the calling (main) thread to the bench's CPUs and records the
/// server's; call before starting any thread. Fails on fewer than 2 CPUs.
pub fn pin_this_run() -> anyhow::Result<Pinning> {
    let allowed = sched_getaffinity(None).context("reading this process's CPU affinity")?;
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&cpu| allowed.is_set(cpu)).collect();
    let Some((&server, bench)) = cpus.split_first().filter(|(_, rest)| !rest.is_empty()) else {
        anyhow::bail!("--pin needs at least 2 CPUs, and this process may use {cpus:?}");
    };
    let pinning = Pinning {
        server,
        bench: bench.to_vec(),
    };
    set(&pinning.bench)?;
    let pinning = PINNING.get_or_init(|| pinning).clone();
    Ok(pinning)
}

/// The run's pinning, if `--pin` was given.
pub fn current() -> Option<&'static Pinning> {
    PINNING.get()
}

/// Spawns a server: on the server CPU when the run is pinned, as is otherwise.
pub fn spawn(command: &mut Command) -> anyhow::Result<Child> {
    let Some(pinning) = current() else {
        return Ok(command.spawn()?);
    };
    std::thread::scope(|scope| {
        let spawner = std::thread::Builder::new()
            .name(SPAWNER.into())
            .spawn_scoped(scope, || {
                set(&[pinning.server])?;
                Ok(command.spawn()?)
            })?;
        spawner
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the thread spawning a pinned server panicked")))
    })
}
