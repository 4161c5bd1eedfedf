//! The CPU time and resident memory of a target process, sampled from
//! `/proc/PID/stat` and `/proc/PID/status` on a background thread, so the
//! figures are the target's own and not the bench's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use quotehub_proto::now_ns;

const EVERY: Duration = Duration::from_millis(100);

/// One reading: when (ns since the epoch), CPU seconds so far, resident KiB.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at_ns: u64,
    pub cpu_seconds: f64,
    pub rss_kib: u64,
}

/// Reads a process's user + system CPU seconds and its resident set now.
pub fn read(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())?;
    Some(Sample {
        at_ns: now_ns(),
        cpu_seconds: ticks as f64 / per_second as f64,
        rss_kib,
    })
}

/// Samples a process until dropped.
#[derive(Debug)]
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// CPU and memory of a process over a window.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// CPU time over wall time, in percent of one core.
    pub cpu_percent: f64,
    /// CPU seconds (user + system) spent in the window.
    pub cpu_seconds: f64,
    /// Highest resident set seen in the window, MiB.
    pub peak_rss_mib: f64,
}

impl Usage {
    /// Several processes' usage together (CPU and peaks added), or none if
    /// any of them has none.
    pub fn sum(usages: impl IntoIterator<Item = Option<Usage>>) -> Option<Usage> {
        usages.into_iter().try_fold(Usage::default(), |total, usage| {
            let usage = usage?;
            Some(Usage {
                cpu_percent: total.cpu_percent + usage.cpu_percent,
                cpu_seconds: total.cpu_seconds + usage.cpu_seconds,
                peak_rss_mib: total.peak_rss_mib + usage.peak_rss_mib,
            })
        })
    }
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let samples = Arc::clone(&samples);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("bench-proc-stats".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match read(pid) {
                            Some(sample) => {
                                if let Ok(mut samples) = samples.lock() {
                                    samples.push(sample);
                                }
                            }
                            None => return,
                        }
                        std::thread::sleep(EVERY);
                    }
                })
                .ok()
        };
        Self { samples, stop, thread }
    }

    /// Usage between two times (ns since the epoch), from the samples nearest inside.
    pub fn usage(&self, from_ns: u64, to_ns: u64) -> Option<Usage> {
        let samples = self.samples.lock().ok()?;
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at_ns >= from_ns && s.at_ns <= to_ns)
            .collect();
        let (first, last) = (inside.first()?, inside.last()?);
        let wall = (last.at_ns.saturating_sub(first.at_ns)) as f64 / 1e9;
        if wall <= 0.0 {
            return None;
        }
        Some(Usage {
            cpu_percent: 100.0 * (last.cpu_seconds - first.cpu_seconds) / wall,
            cpu_seconds: last.cpu_seconds - first.cpu_seconds,
            peak_rss_mib: inside.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let sample = read(std::process::id()).unwrap();
        assert!(sample.rss_kib > 0);
        assert!(sample.cpu_seconds >= 0.0);
    }
}
