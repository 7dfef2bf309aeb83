//! Parsing request bodies into `IncomingEvent`s, with the path of the first
//! error (`[3].site_id`) for the client.

use super::{FieldError, IncomingEvent};

/// Where in the input a parse error sits, as `[3].site_id` or `site_id`.
pub fn parse_error(err: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let field = if path == "." { String::new() } else { path };
    FieldError::new(field, inner.to_string())
}

pub fn parse_one(body: &[u8]) -> Result<IncomingEvent, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(parse_error)
}

pub fn parse_batch(body: &[u8]) -> Result<Vec<IncomingEvent>, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(parse_error)
}
