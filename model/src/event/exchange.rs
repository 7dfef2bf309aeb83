//! The export and import format of stored events: NDJSON, one event per
//! line as the Kafka message carries it, or CSV with one column per
//! stored field (`props` as JSON text, empty texts and absent values as
//! empty cells). What `GET /api/export/events` writes, `import` reads.

use super::{Context, Event, FieldError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The stored fields before the context's texts.
const FIXED_COLUMNS: [&str; 10] = [
    "event_id",
    "site_id",
    "event_type",
    "path",
    "user_id",
    "timestamp",
    "received_at",
    "referrer",
    "props",
    "visitor_id",
];

/// The CSV columns, in order: the fixed fields, then the context's texts
/// in `Context::TEXT_FIELDS` order.
pub const CSV_HEADER: [&str; 24] = {
    let mut out = [""; 24];
    let mut i = 0;
    while i < 24 {
        out[i] = if i < 10 {
            FIXED_COLUMNS[i]
        } else {
            Context::TEXT_FIELDS[i - 10]
        };
        i += 1;
    }
    out
};

/// One event as a line (CSV: one record, quoted as RFC 4180 wants).
pub fn to_line(format: Format, e: &Event) -> Vec<u8> {
    match format {
        Format::Ndjson => {
            // An `Event` is plain data: serializing it cannot fail.
            let mut out = serde_json::to_vec(e).unwrap_or_default();
            out.push(b'\n');
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(csv_record(e));
            w.into_inner().unwrap_or_default()
        }
    }
}

/// The CSV header line.
pub fn csv_header_line() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_HEADER);
    w.into_inner().unwrap_or_default()
}

fn csv_record(e: &Event) -> Vec<String> {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut record = vec![
        e.event_id.to_string(),
        e.site_id.clone(),
        e.event_type.clone(),
        e.path.clone(),
        e.user_id.clone(),
        time(e.timestamp),
        time(e.received_at),
        e.referrer.clone().unwrap_or_default(),
        e.props
            .as_ref()
            .map(|p| Value::Object(p.clone()).to_string())
            .unwrap_or_default(),
        e.context.visitor_id.map(|v| v.to_string()).unwrap_or_default(),
    ];
    record.extend(e.context.text_values().map(str::to_string));
    record
}

/// An event from one CSV record (after the header); problems name the
/// column.
pub fn from_csv(record: &csv::StringRecord) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    if record.len() != CSV_HEADER.len() {
        return Err(vec![FieldError::new(
            "record",
            format!("has {} fields, the header {}", record.len(), CSV_HEADER.len()),
        )]);
    }
    let cell = |i: usize| record.get(i).unwrap_or_default();
    let mut parse = |i: usize, ok: Option<()>| {
        if ok.is_none() {
            errors.push(FieldError::new(
                CSV_HEADER[i],
                format!("cannot be read (`{}`)", cell(i)),
            ));
        }
    };
    let event_id = uuid::Uuid::try_parse(cell(0)).ok();
    parse(0, event_id.map(|_| ()));
    let time = |i: usize| {
        DateTime::parse_from_rfc3339(cell(i))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let (timestamp, received_at) = (time(5), time(6));
    parse(5, timestamp.map(|_| ()));
    parse(6, received_at.map(|_| ()));
    let props: Option<Option<Map<String, Value>>> = match cell(8) {
        "" => Some(None),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Some(Some(m)),
            _ => None,
        },
    };
    parse(8, props.as_ref().map(|_| ()));
    let visitor_id: Option<Option<i64>> = match cell(9) {
        "" => Some(None),
        text => text.parse().ok().map(Some),
    };
    parse(9, visitor_id.map(|_| ()));
    match (event_id, timestamp, received_at, props, visitor_id) {
        (Some(event_id), Some(timestamp), Some(received_at), Some(props), Some(visitor_id)) if errors.is_empty() => {
            Ok(Event {
                event_id,
                site_id: cell(1).to_string(),
                event_type: cell(2).to_string(),
                path: cell(3).to_string(),
                user_id: cell(4).to_string(),
                timestamp,
                received_at,
                referrer: (!cell(7).is_empty()).then(|| cell(7).to_string()),
                props,
                context: Context::new(visitor_id, std::array::from_fn(|k| cell(10 + k))),
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_csv_both_ways() {
        let mut props = Map::new();
        props.insert("plan".into(), Value::String("pro, \"annual\"".into()));
        let e = Event {
            event_id: uuid::Uuid::from_u128(42),
            site_id: "s".into(),
            event_type: "Signup".into(),
            path: "/a,b".into(),
            user_id: String::new(),
            timestamp: "2024-03-31T01:30:00.123456Z".parse().unwrap(),
            received_at: "2024-03-31T01:30:01Z".parse().unwrap(),
            referrer: Some("https://x.example/\"q\"".into()),
            props: Some(props),
            context: Context::new(
                Some(-9),
                [
                    "h",
                    "Google",
                    "Organic Search",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "Firefox",
                    "120",
                    "Linux",
                    "",
                    "desktop",
                    "DE",
                ],
            ),
        };
        let line = to_line(Format::Csv, &e);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(from_csv(&record).unwrap(), e);
        let json = to_line(Format::Ndjson, &e);
        assert_eq!(serde_json::from_slice::<Event>(&json).unwrap(), e);
    }

    #[test]
    fn a_bad_cell_is_named() {
        let mut record: Vec<String> = CSV_HEADER.iter().map(|_| String::new()).collect();
        record[0] = "not-a-uuid".into();
        record[5] = "2024-01-01T00:00:00Z".into();
        record[6] = "yesterday".into();
        let errors = from_csv(&csv::StringRecord::from(record)).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event_id", "received_at"]);
    }
}
