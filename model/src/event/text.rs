//! Which characters text may hold. PostgreSQL refuses byte 0 in `text` and
//! `\u0000` in `jsonb`, and a control character in a path, a site or a user
//! is a client bug (or an attack on whoever reads the logs), so they are
//! refused at the api with a 400 naming the field, and again wherever text
//! enters otherwise (the processor's re-check, query parameters):
//!
//! - names and identifiers (`site_id`, `event_type`, `path`, `user_id`,
//!   `referrer`, prop keys, query parameters): no C0 control character
//!   (U+0000–U+001F) but tab, and no DEL (U+007F);
//! - free text (prop string values): the same, but line feed and carriage
//!   return are allowed too.

use super::FieldError;

/// Control characters allowed in names and identifiers.
pub const IN_NAMES: &[char] = &['\t'];
/// Control characters allowed in free text.
pub const IN_FREE_TEXT: &[char] = &['\t', '\n', '\r'];

/// The first control character of `s` not in `allowed`, described for an
/// error message ("contains the control character U+0000 at character 3").
pub fn control_char(s: &str, allowed: &[char]) -> Option<String> {
    s.chars()
        .enumerate()
        .find(|(_, c)| (c.is_ascii_control()) && !allowed.contains(c))
        .map(|(i, c)| {
            format!(
                "contains the control character U+{:04X} at character {}",
                u32::from(c),
                i + 1
            )
        })
}

/// Records an error on `field` if `value` holds a control character.
pub fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, allowed: &[char]) {
    if let Some(found) = control_char(value, allowed) {
        errors.push(FieldError::new(
            field,
            format!("must not contain control characters: it {found}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_by_kind_of_text() {
        assert!(control_char("/a\tb", IN_NAMES).is_none());
        assert_eq!(
            control_char("/a\u{0}b", IN_NAMES).as_deref(),
            Some("contains the control character U+0000 at character 3")
        );
        assert!(control_char("x\u{7f}", IN_NAMES).is_some());
        assert!(control_char("line\nbreak", IN_NAMES).is_some());
        assert!(control_char("line\r\nbreak", IN_FREE_TEXT).is_none());
        assert!(control_char("nul\u{0}", IN_FREE_TEXT).is_some());
        // Not control characters: other Unicode, including C1 look-alikes' neighbours.
        assert!(control_char("é ü 日本 \u{a0}", IN_NAMES).is_none());
    }
}
