//! A stretch of a site's raw events (a UTC day, as the store keeps them)
//! as one encoded block: the builder's own dictionaries and codes, so that
//! pushing a block into a `Builder` interns each distinct text once per
//! block, not each event's twenty texts, and nothing is parsed per row.
//!
//! Events are kept in order of (time, event id), and the id itself is
//! dropped: the builder needs ids only to order one visitor's events of
//! the same instant, which are always in one block (a block is a span of
//! time), where their position keeps that order.

use super::columns::{Builder, Dict, Pending, ATTRIBUTE_COUNT};
use super::NONE;
use serde::{Deserialize, Serialize};

/// The encoding's version, the first byte of every encoded block.
const VERSION: u8 = 1;
/// The most bytes a block may claim to decode to (a corrupt length must
/// not allocate the machine away).
const MAX_DECODED: usize = 1 << 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    #[error("a block of encoding version {0}, not {VERSION}")]
    Version(u8),
    #[error("a block's compressed bytes: {0}")]
    Compressed(String),
    #[error("a block's fields: {0}")]
    Fields(String),
    #[error("a block's {0} refers past its dictionary")]
    Code(&'static str),
    #[error("a block's columns differ in length")]
    Lengths,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    names: Vec<String>,
    paths: Vec<String>,
    hostnames: Vec<String>,
    visitors: Vec<String>,
    /// One dictionary per attribute, in `ATTRIBUTES` order.
    attributes: Vec<Vec<String>>,
    prop_keys: Vec<String>,
    prop_values: Vec<String>,
    /// The attribute combinations the events use.
    tuples: Vec<[u32; ATTRIBUTE_COUNT]>,
    /// The first event's time (nanoseconds), then each event's step from
    /// the one before (the first step is 0).
    first_ts: i64,
    steps: Vec<u64>,
    /// The visitor's code plus one, 0 without a visitor.
    visitor: Vec<u32>,
    name: Vec<u32>,
    path: Vec<u32>,
    hostname: Vec<u32>,
    tuple: Vec<u32>,
    /// (event, key, value) of every custom property, by event.
    props: Vec<(u32, u32, u32)>,
}

impl Block {
    /// Events in the block.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The bytes a store keeps: the version, then the fields, compressed.
    pub fn encode(&self) -> Result<Vec<u8>, BlockError> {
        let fields = postcard::to_allocvec(self).map_err(|e| BlockError::Fields(e.to_string()))?;
        let mut out = vec![VERSION];
        out.extend_from_slice(&lz4_flex::compress_prepend_size(&fields));
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, BlockError> {
        let (&version, rest) = bytes.split_first().ok_or(BlockError::Version(0))?;
        if version != VERSION {
            return Err(BlockError::Version(version));
        }
        let claimed = rest
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| BlockError::Compressed("no length".into()))?;
        if claimed > MAX_DECODED {
            return Err(BlockError::Compressed(format!("claims {claimed} bytes")));
        }
        let fields = lz4_flex::decompress_size_prepended(rest).map_err(|e| BlockError::Compressed(e.to_string()))?;
        let block: Block = postcard::from_bytes(&fields).map_err(|e| BlockError::Fields(e.to_string()))?;
        block.check()?;
        Ok(block)
    }

    /// Whether every column has a value per event and every code is in its
    /// dictionary: checked when decoding, so that pushing a block never
    /// stops half-way.
    fn check(&self) -> Result<(), BlockError> {
        let n = self.steps.len();
        let columns = [&self.visitor, &self.name, &self.path, &self.hostname, &self.tuple];
        if columns.iter().any(|c| c.len() != n) || self.attributes.len() != ATTRIBUTE_COUNT {
            return Err(BlockError::Lengths);
        }
        let within = |codes: &[u32], len: usize, what| {
            if codes.iter().all(|&c| (c as usize) < len) {
                Ok(())
            } else {
                Err(BlockError::Code(what))
            }
        };
        within(&self.name, self.names.len(), "name")?;
        within(&self.path, self.paths.len(), "path")?;
        within(&self.hostname, self.hostnames.len(), "hostname")?;
        within(&self.tuple, self.tuples.len(), "attribute combination")?;
        // Visitor codes are one more than the dictionary's (0 is none).
        within(&self.visitor, self.visitors.len() + 1, "visitor")?;
        for tuple in &self.tuples {
            for (k, &code) in tuple.iter().enumerate() {
                within(&[code], self.attributes[k].len(), "attribute")?;
            }
        }
        for &(event, key, value) in &self.props {
            within(&[event], n, "property's event")?;
            within(&[key], self.prop_keys.len(), "property key")?;
            within(&[value], self.prop_values.len(), "property value")?;
        }
        Ok(())
    }
}

fn texts(dict: &Dict) -> Vec<String> {
    dict.texts().map(str::to_string).collect()
}

/// Each of `texts` interned in `dict`: its code there by its code here.
fn intern_all(dict: &mut Dict, texts: &[String]) -> Vec<u32> {
    texts.iter().map(|t| dict.intern(t)).collect()
}

fn remap(codes: &[u32], code: u32, what: &'static str) -> Result<u32, BlockError> {
    codes.get(code as usize).copied().ok_or(BlockError::Code(what))
}

impl Builder {
    /// The events pushed so far as one block.
    pub fn into_block(mut self) -> Block {
        self.ensure_attributes();
        let n = self.pending.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| {
            let p = &self.pending[i as usize];
            (p.ts, p.id)
        });
        let mut position = vec![0u32; n];
        for (at, &i) in order.iter().enumerate() {
            position[i as usize] = at as u32;
        }
        let first_ts = order.first().map_or(0, |&i| self.pending[i as usize].ts);
        let mut block = Block {
            names: texts(&self.names),
            paths: texts(&self.paths),
            hostnames: texts(&self.hostnames),
            visitors: texts(&self.visitors),
            attributes: self.attributes.iter().map(texts).collect(),
            prop_keys: texts(&self.prop_keys),
            prop_values: texts(&self.prop_values),
            tuples: std::mem::take(&mut self.tuple_list),
            first_ts,
            ..Block::default()
        };
        let mut previous = first_ts;
        for &i in &order {
            let p = &self.pending[i as usize];
            // Wrapping: any two times' difference fits 64 bits modulo 2^64.
            block.steps.push(p.ts.wrapping_sub(previous) as u64);
            previous = p.ts;
            block.visitor.push(if p.visitor == NONE { 0 } else { p.visitor + 1 });
            block.name.push(p.name);
            block.path.push(p.path);
            block.hostname.push(p.hostname);
            block.tuple.push(p.tuple);
        }
        block.props = self
            .props
            .iter()
            .map(|&(i, k, v)| (position[i as usize], k, v))
            .collect();
        block.props.sort_unstable();
        block
    }

    /// Adds a block's events; `each` is told every event's visitor code
    /// (`NONE` without one) and time, in the block's order. A block that
    /// fails its check (only one not built by `into_block` or decoded can)
    /// is refused before anything is added.
    pub fn push_block(&mut self, block: &Block, mut each: impl FnMut(u32, i64)) -> Result<(), BlockError> {
        block.check()?;
        self.ensure_attributes();
        let names = intern_all(&mut self.names, &block.names);
        let paths = intern_all(&mut self.paths, &block.paths);
        let hostnames = intern_all(&mut self.hostnames, &block.hostnames);
        let visitors = intern_all(&mut self.visitors, &block.visitors);
        let keys = intern_all(&mut self.prop_keys, &block.prop_keys);
        let values = intern_all(&mut self.prop_values, &block.prop_values);
        let attributes: Vec<Vec<u32>> = (0..ATTRIBUTE_COUNT)
            .map(|k| intern_all(&mut self.attributes[k], &block.attributes[k]))
            .collect();
        let mut tuples = Vec::with_capacity(block.tuples.len());
        for tuple in &block.tuples {
            let mut mapped = [0u32; ATTRIBUTE_COUNT];
            for (k, slot) in mapped.iter_mut().enumerate() {
                *slot = remap(&attributes[k], tuple[k], "attribute")?;
            }
            tuples.push(self.intern_tuple(mapped));
        }
        let base = u32::try_from(self.pending.len()).map_err(|_| BlockError::Lengths)?;
        let mut ts = block.first_ts;
        self.pending.reserve(block.len());
        for i in 0..block.len() {
            ts = ts.wrapping_add(block.steps[i] as i64);
            let visitor = match block.visitor[i] {
                0 => NONE,
                v => remap(&visitors, v - 1, "visitor")?,
            };
            self.pending.push(Pending {
                id: i as u128,
                ts,
                visitor,
                name: remap(&names, block.name[i], "name")?,
                path: remap(&paths, block.path[i], "path")?,
                hostname: remap(&hostnames, block.hostname[i], "hostname")?,
                tuple: remap(&tuples, block.tuple[i], "attribute combination")?,
            });
            each(visitor, ts);
        }
        for &(event, key, value) in &block.props {
            self.props.push((
                base + event,
                remap(&keys, key, "property key")?,
                remap(&values, value, "property value")?,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::pv;

    #[test]
    fn a_code_past_its_dictionary_is_refused_before_anything_is_added() {
        let mut day = Builder::default();
        day.push(&pv(1, "2024-01-01T10:00:00Z", "a", "/x"));
        day.push(&pv(2, "2024-01-01T10:01:00Z", "b", "/y"));
        let good = day.into_block();
        for damage in [
            (|b: &mut Block| b.path[1] = 2) as fn(&mut Block),
            |b| b.visitor[0] = 3,
            |b| b.tuples[0][4] = 1,
            |b| b.props.push((2, 0, 0)),
            |b| {
                b.name.pop();
            },
        ] {
            let mut bad = good.clone();
            damage(&mut bad);
            let mut builder = Builder::default();
            assert!(builder.push_block(&bad, |_, _| {}).is_err());
            assert!(builder.is_empty() && builder.visitors().next().is_none());
            assert!(Block::decode(&bad.encode().unwrap()).is_err());
        }
        let mut builder = Builder::default();
        let mut seen = Vec::new();
        builder.push_block(&good, |v, ts| seen.push((v, ts))).unwrap();
        assert_eq!(builder.len(), 2);
        assert_eq!(seen.len(), 2);
        assert!(seen[0].1 < seen[1].1);
    }
}
