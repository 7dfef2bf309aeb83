//! Unique users as exact sets. Every (site, user) gets a dense per-site
//! ordinal (`site_users`, counter in `sites.user_count`), and every
//! (site, day) and (site, day, hour) keeps the set of its users' ordinals
//! (`codec::user_set`) with its cardinality beside it.
//!
//! Why: with one row per (site, day, user), unique users over 30 days is a
//! `COUNT(DISTINCT)` over hundreds of thousands of rows, and the writer pays
//! an indexed insert per user per day and per hour. With sets, a range is
//! the union of at most a few hundred KB of bitmaps, and a batch updates one
//! row per touched (site, day) and (site, day, hour) plus one row per user
//! never seen before.
//!
//! `UserFold` is the fold of one batch with the reads and writes left to the
//! store: it says which users to look up, takes what was found, assigns the
//! next ordinals of each site to the rest, and builds the sets to union into
//! the stored ones (`merge_stored`). Each store drives it with its own
//! statements (`store::postgres::user_sets`, `store::sqlite::user_sets`).

use super::FoldError;
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One site's users in a batch: user → the (day, hour) buckets it was seen
/// in (usually one: a short list beats a set).
type SiteUsers<'a> = foldhash::HashMap<&'a str, Vec<(NaiveDate, i16)>>;

/// The users one batch saw, by site.
///
/// Keys borrow from the batch's events, which outlive the transaction that
/// folds them: copying them cost two allocations an event.
#[derive(Default, Debug)]
pub struct BatchUsers<'a> {
    by_site: foldhash::HashMap<&'a str, SiteUsers<'a>>,
}

impl<'a> BatchUsers<'a> {
    pub fn add(&mut self, site_id: &'a str, user_id: &'a str, day: NaiveDate, hour: i16) {
        let buckets = self.by_site.entry(site_id).or_default().entry(user_id).or_default();
        if !buckets.contains(&(day, hour)) {
            buckets.push((day, hour));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_site.is_empty()
    }

    /// The batch's sites in order (the order writers lock them in), with
    /// their users.
    pub fn sites(&self) -> Vec<(&'a str, &SiteUsers<'a>)> {
        let mut sites: Vec<(&'a str, &SiteUsers<'a>)> =
            self.by_site.iter().map(|(site, users)| (*site, users)).collect();
        sites.sort_unstable_by_key(|(site, _)| *site);
        sites
    }

    /// The batch's own copy of `site` and `user`, if it has them.
    fn key_of(&self, site: &str, user: &str) -> Option<(&'a str, &'a str)> {
        let (&site, users) = self.by_site.get_key_value(site)?;
        let (&user, _) = users.get_key_value(user)?;
        Some((site, user))
    }
}

/// Ordinals this process has seen committed, so that a batch looks up in
/// the database only users it has not met (about 16 ms of a 10,000-event
/// processor transaction, most of its user-set work). Safe because an
/// ordinal, once committed, never changes and is never given to another
/// user: rows of `site_users` are only added, except when a user is
/// deleted, and each deletion bumps its site's epoch (`sites.deletions`),
/// which every batch reads: a site's entries learnt under another epoch are
/// not used (a deleted user who comes back gets a new row). Entries are
/// learnt only after the transaction that read or assigned them has
/// committed (a rolled back assignment may be given to someone else by
/// another processor). Bounded: past `KNOWN_ORDINALS_MAX` entries it starts
/// over, which costs lookups, never correctness.
#[derive(Default)]
pub struct KnownOrdinals(Mutex<Known>);

#[derive(Default)]
struct Known {
    /// Site → (its epoch when learnt, user → ordinal).
    by_site: foldhash::HashMap<String, (i64, foldhash::HashMap<String, u32>)>,
    len: usize,
}

/// About 30 MB of users at most.
const KNOWN_ORDINALS_MAX: usize = 500_000;

/// (site, user, ordinal, the site's epoch) that one transaction read or
/// assigned.
pub type Learnt = Vec<(String, String, u32, i64)>;

impl KnownOrdinals {
    /// The known ordinal (or `None`) of each of a site's `users`, in their
    /// order, under one lock; none if they were learnt under another epoch.
    fn get_all<'u>(&self, site: &str, epoch: i64, users: impl IntoIterator<Item = &'u str>) -> Vec<Option<u32>> {
        let known = self.0.lock().ok();
        let site_users = known
            .as_ref()
            .and_then(|k| k.by_site.get(site))
            .filter(|(e, _)| *e == epoch)
            .map(|(_, m)| m);
        users
            .into_iter()
            .map(|user| site_users.and_then(|m| m.get(user).copied()))
            .collect()
    }

    /// Records what a committed transaction read or assigned.
    pub fn learn(&self, learnt: Learnt) {
        let Ok(mut known) = self.0.lock() else { return };
        if known.len + learnt.len() > KNOWN_ORDINALS_MAX {
            *known = Known::default();
        }
        for (site, user, ordinal, epoch) in learnt {
            let entry = known.by_site.entry(site).or_insert_with(|| (epoch, Default::default()));
            let mut forgotten = 0;
            if entry.0 != epoch {
                forgotten = entry.1.len();
                *entry = (epoch, Default::default());
            }
            let added = usize::from(entry.1.insert(user, ordinal).is_none());
            known.len = known.len + added - forgotten;
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |k| k.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stored ordinal or counter as a `u32`, the width of a set's members.
pub fn ordinal(site: &str, stored: i64) -> Result<u32, FoldError> {
    u32::try_from(stored).map_err(|_| FoldError::TooManyUsers(site.to_string()))
}

/// Users a batch saw for the first time, with their new ordinals, and each
/// such site's new `user_count`.
#[derive(Debug, Default)]
pub struct NewUsers<'a> {
    pub rows: Vec<(&'a str, &'a str, u32)>,
    pub counters: Vec<(&'a str, u32)>,
}

/// The batch's sets, to union into the stored ones.
#[derive(Debug, Default)]
pub struct UserSets<'a> {
    pub daily: BTreeMap<(&'a str, NaiveDate), RoaringBitmap>,
    pub hourly: BTreeMap<(&'a str, NaiveDate, i16), RoaringBitmap>,
}

/// One batch's users on their way to ordinals and sets.
pub struct UserFold<'b, 'a> {
    batch: &'b BatchUsers<'a>,
    epochs: foldhash::HashMap<&'a str, i64>,
    /// An entry for each of the batch's users: hashed with foldhash, as
    /// the batch's other maps, rather than SipHash.
    ordinals: foldhash::HashMap<&'a str, foldhash::HashMap<&'a str, u32>>,
    /// Users not in `known`, to look up in `site_users`.
    unknown: Vec<(&'a str, &'a str)>,
    learnt: Learnt,
}

impl<'b, 'a> UserFold<'b, 'a> {
    /// Takes the ordinals `known` has under each site's current `epoch`
    /// (its `sites.deletions`, read in this transaction); the rest are to
    /// be looked up.
    pub fn start(batch: &'b BatchUsers<'a>, known: &KnownOrdinals, epoch: impl Fn(&str) -> i64) -> Self {
        let mut ordinals: foldhash::HashMap<&'a str, foldhash::HashMap<&'a str, u32>> = Default::default();
        let mut epochs: foldhash::HashMap<&'a str, i64> = Default::default();
        let mut unknown = Vec::new();
        for (site, users) in batch.sites() {
            let e = epoch(site);
            epochs.insert(site, e);
            let found = known.get_all(site, e, users.keys().copied());
            for (&user, o) in users.keys().zip(found) {
                match o {
                    Some(o) => {
                        ordinals.entry(site).or_default().insert(user, o);
                    }
                    None => unknown.push((site, user)),
                }
            }
        }
        Self {
            batch,
            epochs,
            ordinals,
            unknown,
            learnt: Learnt::new(),
        }
    }

    /// The (site, user) pairs whose stored ordinal the store must look up.
    pub fn lookups(&self) -> &[(&'a str, &'a str)] {
        &self.unknown
    }

    /// A stored ordinal the store found.
    pub fn found(&mut self, site: &str, user: &str, ordinal: u32) {
        if let Some((site, user)) = self.batch.key_of(site, user) {
            self.ordinals.entry(site).or_default().insert(user, ordinal);
            let epoch = self.epochs.get(site).copied().unwrap_or_default();
            self.learnt.push((site.to_string(), user.to_string(), ordinal, epoch));
        }
    }

    fn has(&self, site: &str, user: &str) -> bool {
        self.ordinals.get(site).is_some_and(|o| o.contains_key(user))
    }

    /// Sites with users found neither in `known` nor stored: their counters
    /// are needed by `assign`.
    pub fn sites_with_new_users(&self) -> Vec<&'a str> {
        let mut sites: Vec<&'a str> = self
            .unknown
            .iter()
            .filter(|(site, user)| !self.has(site, user))
            .map(|(site, _)| *site)
            .collect();
        sites.dedup();
        sites
    }

    /// Gives every user still without an ordinal the next of its site,
    /// counting from `counter(site)` (the stored `user_count`).
    pub fn assign(&mut self, counter: impl Fn(&str) -> Option<u32>) -> Result<NewUsers<'a>, FoldError> {
        let mut next: foldhash::HashMap<&'a str, u32> = Default::default();
        let mut rows = Vec::new();
        for i in 0..self.unknown.len() {
            let (site, user) = self.unknown[i];
            if self.has(site, user) {
                continue;
            }
            let n = match next.get(site) {
                Some(&n) => n,
                None => counter(site).ok_or_else(|| FoldError::NoSiteRow(site.to_string()))?,
            };
            rows.push((site, user, n));
            self.ordinals.entry(site).or_default().insert(user, n);
            let epoch = self.epochs.get(site).copied().unwrap_or_default();
            self.learnt.push((site.to_string(), user.to_string(), n, epoch));
            let after = n
                .checked_add(1)
                .ok_or_else(|| FoldError::TooManyUsers(site.to_string()))?;
            next.insert(site, after);
        }
        let mut counters: Vec<(&'a str, u32)> = next.into_iter().collect();
        counters.sort_unstable();
        Ok(NewUsers { rows, counters })
    }

    /// Every (site, day) and (site, day, hour) set of the batch. Call after
    /// `assign`: every user has an ordinal then.
    pub fn sets(&self) -> UserSets<'a> {
        let mut sets = UserSets::default();
        for (site, users) in self.batch.sites() {
            let Some(site_ordinals) = self.ordinals.get(site) else {
                continue;
            };
            for (&user, buckets) in users {
                let Some(&ordinal) = site_ordinals.get(user) else {
                    continue;
                };
                for &(day, hour) in buckets {
                    sets.daily.entry((site, day)).or_default().insert(ordinal);
                    sets.hourly.entry((site, day, hour)).or_default().insert(ordinal);
                }
            }
        }
        sets
    }

    /// What this batch read or assigned, for `KnownOrdinals::learn` once
    /// its transaction has committed.
    pub fn learnt(self) -> Learnt {
        self.learnt
    }
}

/// Unions a stored set into the batch's; false when the stored set already
/// holds every user of the batch's, which then needs no write (a set is
/// rewritten whole, up to 8 KB per 65,536 users, and is most of the pages a
/// small transaction writes).
pub fn merge_stored(set: &mut RoaringBitmap, stored: RoaringBitmap) -> bool {
    if set.is_subset(&stored) {
        return false;
    }
    *set |= stored;
    true
}

/// Unions each stored set into the batch's and keeps only the sets that
/// changed: what the store must write back.
pub fn sets_to_write<K: Ord>(
    mut sets: BTreeMap<K, RoaringBitmap>,
    stored: impl IntoIterator<Item = (K, RoaringBitmap)>,
) -> BTreeMap<K, RoaringBitmap> {
    for (key, old) in stored {
        if let Some(set) = sets.get_mut(&key) {
            if !merge_stored(set, old) {
                sets.remove(&key);
            }
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 15).unwrap_or_default()
    }

    #[test]
    fn batch_users_group_buckets_per_site_and_user() {
        let d = day();
        let mut b = BatchUsers::default();
        b.add("s", "u1", d, 3);
        b.add("s", "u1", d, 3);
        b.add("s", "u1", d, 4);
        b.add("t", "u1", d, 3);
        assert_eq!(b.by_site.len(), 2);
        assert_eq!(b.by_site["s"]["u1"].len(), 2);
        assert!(!b.is_empty());
    }

    #[test]
    fn fold_takes_known_then_found_then_assigns_the_rest() {
        let d = day();
        let mut b = BatchUsers::default();
        for (site, user, hour) in [
            ("s", "known", 1),
            ("s", "stored", 2),
            ("s", "new1", 2),
            ("s", "new2", 3),
            ("t", "new", 1),
        ] {
            b.add(site, user, d, hour);
        }
        let known = KnownOrdinals::default();
        known.learn(vec![("s".into(), "known".into(), 0, 0)]);
        let mut fold = UserFold::start(&b, &known, |_| 0);
        assert_eq!(fold.lookups().len(), 4);
        fold.found("s", "stored", 1);
        fold.found("s", "not-in-batch", 9);
        assert_eq!(fold.sites_with_new_users(), ["s", "t"]);
        let new = fold
            .assign(|site| Some(if site == "s" { 2 } else { 0 }))
            .ok()
            .unwrap_or_default();
        assert_eq!(new.rows.len(), 3);
        assert_eq!(new.counters, [("s", 4), ("t", 1)]);
        let sets = fold.sets();
        assert_eq!(sets.daily[&("s", d)].len(), 4);
        assert_eq!(sets.daily[&("t", d)].iter().collect::<Vec<_>>(), [0]);
        assert_eq!(sets.hourly[&("s", d, 2)].len(), 2);
        // Learnt: the stored one and the three new ones, not the known one.
        assert_eq!(fold.learnt().len(), 4);
    }

    #[test]
    fn a_missing_counter_or_a_full_site_is_an_error() {
        let mut b = BatchUsers::default();
        b.add("s", "u", day(), 0);
        let known = KnownOrdinals::default();
        let mut fold = UserFold::start(&b, &known, |_| 0);
        assert_eq!(fold.assign(|_| None).err(), Some(FoldError::NoSiteRow("s".into())));
        let mut fold = UserFold::start(&b, &known, |_| 0);
        assert_eq!(
            fold.assign(|_| Some(u32::MAX)).err(),
            Some(FoldError::TooManyUsers("s".into()))
        );
        assert!(ordinal("s", -1).is_err() && ordinal("s", 5).is_ok());
    }

    #[test]
    fn a_deletion_epoch_forgets_a_sites_ordinals() {
        let mut b = BatchUsers::default();
        b.add("s", "u", day(), 0);
        b.add("t", "v", day(), 0);
        let known = KnownOrdinals::default();
        known.learn(vec![("s".into(), "u".into(), 7, 0), ("t".into(), "v".into(), 3, 0)]);
        assert_eq!(known.len(), 2);
        let fold = UserFold::start(&b, &known, |site| if site == "s" { 1 } else { 0 });
        assert_eq!(
            fold.lookups(),
            [("s", "u")],
            "site s had a deletion since: look its user up"
        );
        known.learn(vec![("s".into(), "w".into(), 9, 1)]);
        assert_eq!(known.len(), 2, "s's old entries are gone, t's kept");
    }

    #[test]
    fn only_sets_that_gain_users_are_written() {
        let set = |xs: &[u32]| -> RoaringBitmap { xs.iter().copied().collect() };
        let batch: BTreeMap<u8, RoaringBitmap> = [(1, set(&[1, 2])), (2, set(&[3])), (3, set(&[4]))].into();
        let out = sets_to_write(batch, [(1, set(&[1, 2, 5])), (2, set(&[7]))]);
        assert_eq!(out.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(out[&2], set(&[3, 7]));
    }
}
