//! A stored path pack as the readers use it: `decode`, `visit`, `add_pack`
//! (twice: a period sums several packs) and `rank`.
//! Oracle: nothing panics; a pack that decodes re-encodes to a pack that
//! decodes to the same map; `visit`, `decode` and `add_pack` agree on what is
//! corrupt; `rank` returns at most `limit` paths, by views then path bytes,
//! with the summed views.
#![no_main]

use analytics_model::codec::path_pack::{add_pack, decode, encode, rank, visit, PathTotals};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut visited = 0usize;
    let visit_ok = visit(data, |_, views| {
        assert!(views >= 0, "a pack holds negative views");
        visited += 1;
    })
    .is_ok();

    let decoded = decode(data);
    if let Ok(map) = &decoded {
        assert!(visit_ok, "decode accepts what visit refuses");
        assert!(map.len() <= visited);
        let again = encode(map);
        assert_eq!(
            decode(&again).as_ref(),
            Ok(map),
            "encode(decode(pack)) decodes to another map"
        );
    }

    let mut totals = PathTotals::default();
    if add_pack(&mut totals, data).is_err() {
        assert!(!visit_ok, "add_pack refuses what visit accepts");
        return;
    }
    assert!(visit_ok, "add_pack accepts what visit refuses");
    if totals.is_empty() {
        return;
    }
    let once = totals.clone();
    assert!(add_pack(&mut totals, data).is_ok());
    let limit = match data.len() % 4 {
        0 => 0,
        1 => 1,
        2 => 3,
        _ => u32::MAX,
    };
    let expected = totals.len().min(limit as usize);
    let all_utf8 = totals.keys().all(|k| std::str::from_utf8(k).is_ok());
    match rank(totals.clone(), limit) {
        Ok(ranked) => {
            assert_eq!(ranked.len(), expected);
            for pair in ranked.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                assert!(
                    a.views > b.views || (a.views == b.views && a.path.as_bytes() < b.path.as_bytes()),
                    "rank order: {a:?} before {b:?}"
                );
            }
            for p in &ranked {
                let twice = once[p.path.as_bytes()].saturating_mul(2);
                assert_eq!(p.views, twice, "views of {:?} not summed", p.path);
            }
        }
        Err(_) => assert!(!all_utf8, "rank refuses UTF-8 paths"),
    }
});
