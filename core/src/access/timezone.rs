//! A site's IANA time zone (issue 23): what an admin may set
//! (`analytics-admin sites add SITE --timezone Europe/Berlin`, `sites
//! set-timezone`, `/api/admin/sites`), checked here once for the CLI and
//! HTTP alike, and read back from the `sites.timezone` column.
//!
//! A zone is a name of the tz database as `chrono_tz::Tz` knows it, spelt
//! exactly (`Europe/Berlin`, `Asia/Kathmandu`, `America/Argentina/Salta`,
//! `UTC`); it is stored as that name.

use super::AccessError;
use crate::event::FieldError;
use crate::store::StoreError;
use chrono_tz::Tz;

/// The field a zone is given in, on the command line and over HTTP.
pub const FIELD: &str = "timezone";

/// Every site's zone until an admin sets another (the column's default).
pub const DEFAULT: Tz = Tz::UTC;

/// The zone named `raw` (surrounding blanks ignored), or an error naming
/// the `timezone` field and the value.
pub fn parse(raw: &str) -> Result<Tz, AccessError> {
    let name = raw.trim();
    name.parse::<Tz>().map_err(|_| {
        let hint = chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .map(|tz| format!(" (did you mean `{}`?)", tz.name()))
            .unwrap_or_default();
        AccessError::Field(FieldError::new(
            FIELD,
            format!(
                "`{}` is not an IANA time zone such as Europe/Berlin, Asia/Kathmandu or UTC{hint}",
                raw.escape_debug()
            ),
        ))
    })
}

/// The zone stored for `site`: written only through `parse`, so anything
/// else is a corrupt row.
pub fn stored(site: &str, raw: &str) -> Result<Tz, StoreError> {
    raw.parse::<Tz>().map_err(|_| {
        StoreError::Corrupt(
            format!(
                "site `{site}` has the time zone `{}`, which is not one",
                raw.escape_debug()
            )
            .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse_to_themselves() {
        for name in [
            "Europe/Berlin",
            "Asia/Kathmandu",
            "UTC",
            "America/Argentina/Salta",
            "Etc/GMT+5",
        ] {
            assert_eq!(parse(name).map(Tz::name).ok(), Some(name), "{name}");
        }
        assert_eq!(parse(" Europe/Berlin\n").ok(), Some(Tz::Europe__Berlin));
        assert_eq!(DEFAULT.name(), "UTC");
    }

    #[test]
    fn a_bad_zone_names_the_field_and_the_value() {
        for bad in ["", "Mars/Olympus", "Europe/Berlin/", "+02:00", "CEST", "utc\u{0}"] {
            match parse(bad) {
                Err(AccessError::Field(f)) => {
                    assert_eq!(f.field, "timezone");
                    assert!(
                        f.message.contains(&format!("`{}`", bad.escape_debug())),
                        "{}",
                        f.message
                    );
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = parse("europe/berlin").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.starts_with("timezone: `europe/berlin` is not") && e.ends_with("(did you mean `Europe/Berlin`?)"),
            "{e}"
        );
    }

    #[test]
    fn a_stored_zone_that_is_not_one_is_corrupt() {
        assert_eq!(stored("s", "Asia/Kathmandu").ok(), Some(Tz::Asia__Kathmandu));
        assert!(matches!(stored("s", "Nowhere"), Err(StoreError::Corrupt(_))));
    }
}
