//! `analytics-admin import --site S FILE` and `POST /api/admin/import`:
//! raw events in the export format (NDJSON or CSV, `event::exchange`)
//! written through the writer, so an import is exactly-once like ingest:
//! re-importing a file changes nothing. Every line is checked as the
//! processor checks a Kafka message (`Event::check_stored`: no age bound,
//! history from any year is welcome) and must belong to the site.
//!
//! A bad line is reported with its line number. With `all_or_nothing`
//! the input is checked whole first and nothing is written if any line is
//! bad; otherwise the good lines are written and the bad ones reported.

use super::{StoreError, Writer};
use crate::event::exchange::{self, Format};
use crate::event::Event;
use std::io::BufRead;

/// Events per write (one transaction each).
const BATCH: usize = 5_000;
/// Bad lines kept in the report (the count is exact).
const MAX_REPORTED: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, the CSV header being line 1.
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events read (good lines).
    pub read: u64,
    /// Of those, new to the store.
    pub inserted: u64,
    /// Already stored (an earlier import, or ingest): unchanged.
    pub duplicates: u64,
    pub bad_lines: u64,
    /// The first bad lines.
    pub bad: Vec<BadLine>,
    /// Nothing was written because a line was bad (`all_or_nothing`).
    pub aborted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line of input: its number and its event, or what is wrong with it.
type Line = (u64, Result<Event, String>);

fn messages(errors: &[crate::event::FieldError]) -> String {
    errors
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The lines of `input`, each checked (see the module); an I/O error
/// ends the import.
fn lines<'a, R: BufRead + Send + 'a>(
    input: R,
    format: Format,
    site: &'a str,
) -> Box<dyn Iterator<Item = Result<Line, std::io::Error>> + Send + 'a> {
    let check = move |e: Event| -> Result<Event, String> {
        if e.site_id != site {
            return Err(format!("site_id: belongs to `{}`, not `{site}`", e.site_id));
        }
        e.check_stored().map_err(|errors| messages(&errors))?;
        Ok(e)
    };
    match format {
        Format::Ndjson => Box::new(
            input
                .lines()
                .enumerate()
                .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(move |(n, line)| {
                    let line = line?;
                    let parsed = serde_json::from_str::<Event>(&line).map_err(|e| format!("not an event: {e}"));
                    Ok((n as u64 + 1, parsed.and_then(check)))
                }),
        ),
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
            let header_ok = reader
                .headers()
                .map(|h| h.iter().eq(exchange::CSV_HEADER.iter().copied()))
                .unwrap_or(false);
            if !header_ok {
                let message = format!("header: must be {}", exchange::CSV_HEADER.join(","));
                return Box::new(std::iter::once(Ok((1, Err(message)))));
            }
            Box::new(reader.into_records().map(move |record| {
                Ok(match record {
                    Ok(r) => {
                        let line = r.position().map_or(0, |p| p.line());
                        (line, exchange::from_csv(&r).map_err(|e| messages(&e)).and_then(check))
                    }
                    Err(e) if e.is_io_error() => return Err(std::io::Error::other(e)),
                    Err(e) => (e.position().map_or(0, |p| p.line()), Err(format!("not CSV: {e}"))),
                })
            }))
        }
    }
}

/// Imports into `writer`. `open` gives the input (twice with
/// `all_or_nothing`: a checking pass, then the writing one); `progress`
/// hears the report after every batch. Memory holds one batch.
pub async fn import<R: BufRead + Send>(
    writer: &Writer,
    mut open: impl FnMut() -> Result<R, std::io::Error>,
    format: Format,
    site: &str,
    all_or_nothing: bool,
    mut progress: impl FnMut(&Report),
) -> Result<Report, ImportError> {
    let mut report = Report::default();
    let note_bad = |report: &mut Report, line: u64, message: String| {
        report.bad_lines += 1;
        if report.bad.len() < MAX_REPORTED {
            report.bad.push(BadLine { line, message });
        }
    };
    if all_or_nothing {
        for item in lines(open()?, format, site) {
            if let (line, Err(message)) = item? {
                note_bad(&mut report, line, message);
            }
        }
        if report.bad_lines > 0 {
            report.aborted = true;
            return Ok(report);
        }
    }
    let mut batch = Vec::with_capacity(BATCH);
    let mut input = lines(open()?, format, site);
    loop {
        let next = input.next().transpose()?;
        let done = next.is_none();
        match next {
            Some((_, Ok(e))) => batch.push(e),
            Some((line, Err(message))) => note_bad(&mut report, line, message),
            None => {}
        }
        if batch.len() == BATCH || (done && !batch.is_empty()) {
            let events = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            let outcome = writer.write_owned(events).await.map_err(|(e, _)| e)?;
            report.read += (outcome.inserted + outcome.duplicates) as u64;
            report.inserted += outcome.inserted as u64;
            report.duplicates += outcome.duplicates as u64;
            progress(&report);
        }
        if done {
            return Ok(report);
        }
    }
}
