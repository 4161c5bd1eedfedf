//! `quotehub synth`: writes the bundled session.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;
use quotehub_feed::synth::{SynthOptions, write_session};

use crate::cli::SynthArgs;

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let options = SynthOptions {
        seed: args.seed,
        seconds: args.seconds,
    };
    let lines = match &args.out {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let lines = write_session(options, &mut out)?;
            out.flush()?;
            lines
        }
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            let lines = write_session(options, &mut out)?;
            out.flush()?;
            lines
        }
    };
    tracing::info!(lines, seed = args.seed, seconds = args.seconds, "session written");
    Ok(())
}
