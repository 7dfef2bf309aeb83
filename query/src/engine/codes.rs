//! A column of dictionary codes stored as narrow as its dictionary allows:
//! a site has a handful of event names and hostnames and a few thousand
//! paths, so one or two bytes an event instead of four. The scan reads
//! every event's name and a key column or two; it is bound by memory
//! traffic, and the cache holds more ranges in the same budget.

/// Codes of one event column (see the module).
#[derive(Debug, Clone)]
pub enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Default for Codes {
    fn default() -> Self {
        Codes::U8(Vec::new())
    }
}

impl Codes {
    /// `codes`, every one below `distinct`, in the narrowest width.
    pub fn new(codes: Vec<u32>, distinct: usize) -> Codes {
        if distinct <= 1 << 8 {
            Codes::U8(codes.into_iter().map(|c| c as u8).collect())
        } else if distinct <= 1 << 16 {
            Codes::U16(codes.into_iter().map(|c| c as u16).collect())
        } else {
            Codes::U32(codes)
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        self.slice().get(i)
    }

    #[inline]
    pub fn slice(&self) -> CodesRef<'_> {
        match self {
            Codes::U8(v) => CodesRef::U8(v),
            Codes::U16(v) => CodesRef::U16(v),
            Codes::U32(v) => CodesRef::U32(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Codes::U8(v) => v.len(),
            Codes::U16(v) => v.len(),
            Codes::U32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Codes::U8(v) => v.capacity(),
            Codes::U16(v) => v.capacity() * 2,
            Codes::U32(v) => v.capacity() * 4,
        }
    }
}

/// A borrowed `Codes`, to copy into a scan.
#[derive(Debug, Clone, Copy)]
pub enum CodesRef<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl CodesRef<'_> {
    #[inline]
    pub fn get(self, i: usize) -> u32 {
        match self {
            CodesRef::U8(v) => u32::from(v[i]),
            CodesRef::U16(v) => u32::from(v[i]),
            CodesRef::U32(v) => v[i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_code_at_each_width() {
        for distinct in [1usize, 2, 255, 256, 257, 65_535, 65_536, 65_537, 200_000] {
            let codes: Vec<u32> = (0..3 * distinct).map(|i| ((i * 7919) % distinct) as u32).collect();
            let narrow = Codes::new(codes.clone(), distinct);
            let width = match narrow {
                Codes::U8(_) => 1,
                Codes::U16(_) => 2,
                Codes::U32(_) => 4,
            };
            let expected = if distinct <= 256 {
                1
            } else if distinct <= 65_536 {
                2
            } else {
                4
            };
            assert_eq!(width, expected, "{distinct} codes");
            assert_eq!(narrow.len(), codes.len());
            assert!(
                codes.iter().enumerate().all(|(i, &c)| narrow.get(i) == c),
                "{distinct} codes"
            );
        }
    }
}
