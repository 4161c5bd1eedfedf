//! `quotehub convert`: reads a recorded feed in any format and writes it as
//! JSON lines or as a capture, losing nothing the target format can hold.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use quotehub_feed::{CaptureWriter, RecordedFeed, jsonl_writer};

use crate::cli::{ConvertArgs, OutputFormat};
use crate::feeds::{MergeTimes, open_recorded_feeds};

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let format = match args.to {
        Some(format) => format,
        None => format_of(&args.output)?,
    };
    let mut feed = open_recorded_feeds(std::slice::from_ref(&args.input), MergeTimes::AsRecorded)?;
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && format == OutputFormat::Capture {
        anyhow::bail!("a capture is binary: write it to a file, not standard output");
    }
    let out: Box<dyn Write> = if to_stdout {
        Box::new(io::stdout().lock())
    } else {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
        Box::new(file)
    };
    let out = BufWriter::with_capacity(1 << 20, out);
    let written = match format {
        OutputFormat::Jsonl => write_jsonl(feed.as_mut(), out),
        OutputFormat::Capture => write_capture(feed.as_mut(), out),
    };
    let written = match written {
        Ok(written) => written,
        // A reader that has seen enough (`| head`) ends the output quietly.
        Err(err) if to_stdout && is_broken_pipe(&err) => return Ok(()),
        Err(err) => return Err(err.context(format!("writing {}", args.output.display()))),
    };
    let stats = feed.stats();
    eprintln!(
        "converted {written} events from {} ({} rejected, {} filtered out)",
        feed.name(),
        stats.rejected,
        stats.filtered
    );
    for rejection in &stats.first_rejections {
        eprintln!("  rejected: {rejection}");
    }
    Ok(())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe)
}

/// The output format a file name implies.
fn format_of(path: &Path) -> anyhow::Result<OutputFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "json" | "ndjson") => Ok(OutputFormat::Jsonl),
        Some("qhc") => Ok(OutputFormat::Capture),
        _ if path.as_os_str() == "-" => Ok(OutputFormat::Jsonl),
        _ => anyhow::bail!(
            "cannot tell the output format from {}: name it .jsonl or .qhc, or pass --to jsonl|capture",
            path.display()
        ),
    }
}

fn write_jsonl(feed: &mut dyn RecordedFeed, mut out: impl Write) -> anyhow::Result<u64> {
    let mut written = 0;
    while let Some(event) = feed.next_event()? {
        jsonl_writer::write_event(&mut out, &event)?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn write_capture(feed: &mut dyn RecordedFeed, out: impl Write) -> anyhow::Result<u64> {
    let mut capture = CaptureWriter::new(out)?;
    while let Some(event) = feed.next_event()? {
        capture.write_event(&event)?;
    }
    let written = capture.records();
    capture.finish()?;
    Ok(written)
}
