//! The progress line on stderr: redrawn in place on a terminal, a plain
//! line every few seconds otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Shows `line()` until dropped.
    pub fn start(line: impl Fn() -> String + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let terminal = std::io::stderr().is_terminal();
                let every = if terminal {
                    Duration::from_millis(250)
                } else {
                    Duration::from_secs(5)
                };
                let mut last = Instant::now();
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = Instant::now();
                    let mut stderr = std::io::stderr().lock();
                    if terminal {
                        let _ = write!(stderr, "\r\x1b[2K{}", line());
                    } else {
                        let _ = writeln!(stderr, "  {}", line());
                    }
                    let _ = stderr.flush();
                }
                if terminal {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bar of `width` cells, `done` of `total` filled.
pub fn bar(done: f64, total: f64, width: usize) -> String {
    let fraction = if total > 0.0 {
        (done / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = (fraction * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}
