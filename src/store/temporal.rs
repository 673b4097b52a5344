//! Validity intervals: how the history store keeps each fact once for the run of snapshots it
//! holds in, rather than once per week.
//!
//! A *fact* is a (tag, prefix) pair or a (tag, metadata) version. Each snapshot of a cloud has an
//! *ordinal* that sorts it among the cloud's snapshots (by file date, then changeNumber, then
//! content hash). A fact's interval `[from, to]` says it holds in every snapshot whose ordinal lies
//! in that range; `to == OPEN` marks an interval that reaches the newest snapshot. Intervals are
//! kept maximal, and their ends are always ordinals of real snapshots, so the set of intervals is
//! a function of the set of snapshots alone: importing weeks in any order gives the same history.
//!
//! [`plan_insert`] is the whole algorithm: given the facts of a new snapshot and the intervals
//! that touch its neighbours, it says which intervals to insert, reshape and delete. It is pure, so
//! it is tested here against a brute-force model, and both store backends execute its plans.

use std::hash::Hash;

use rustc_hash::FxHashMap;

pub use crate::core::model::OPEN;

/// A stored interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval<K> {
    /// The store's row id.
    pub id: i64,
    /// The fact.
    pub key: K,
    /// The first snapshot ordinal in which the fact holds.
    pub from: i64,
    /// The last snapshot ordinal in which the fact holds, or [`OPEN`].
    pub to: i64,
}

impl<K> Interval<K> {
    fn contains(&self, ord: i64) -> bool {
        self.from <= ord && ord <= self.to
    }
}

/// Where the new snapshot goes: its ordinal and those of its neighbours, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The ordinal of the snapshot just before, if any.
    pub prev: Option<i64>,
    /// The new snapshot's ordinal.
    pub at: i64,
    /// The ordinal of the snapshot just after, if any (none: the new snapshot is the newest).
    pub next: Option<i64>,
}

impl Position {
    /// The range of ordinals whose intervals [`plan_insert`] needs: those that touch it.
    pub fn window(&self) -> (i64, i64) {
        (self.prev.unwrap_or(self.at), self.next.unwrap_or(self.at))
    }

    fn new_to(&self) -> i64 {
        if self.next.is_some() {
            self.at
        } else {
            OPEN
        }
    }
}

/// The changes that insert one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<K> {
    /// New intervals: (fact, from, to).
    pub insert: Vec<(K, i64, i64)>,
    /// Intervals whose end moves: (id, new to). Every reshaping moves exactly one end, and
    /// many move to the same ordinal, so stores can batch them by value.
    pub set_to: Vec<(i64, i64)>,
    /// Intervals whose start moves: (id, new from).
    pub set_from: Vec<(i64, i64)>,
    /// Intervals removed (merged into another).
    pub delete: Vec<i64>,
    /// New intervals of a stored interval's fact (the second half of a split): (id, from, to).
    pub copy: Vec<(i64, i64, i64)>,
}

impl<K> Default for Plan<K> {
    fn default() -> Self {
        Plan {
            insert: Vec::new(),
            set_to: Vec::new(),
            set_from: Vec::new(),
            delete: Vec::new(),
            copy: Vec::new(),
        }
    }
}

/// A fact's stored intervals around the new position: the one holding at `prev` (which may
/// span the position) and the one holding at `next`.
type Neighbourhood<K> = (Option<Interval<K>>, Option<Interval<K>>);

/// Plans the insertion of a snapshot at `pos` that holds exactly the facts `present`.
///
/// `touching` must hold every stored interval (of the facts concerned) that contains `pos.prev`
/// or `pos.next`; intervals of facts outside `present` that touch neither may be left out.
pub fn plan_insert<K: Hash + Eq + Clone>(
    pos: Position,
    touching: Vec<Interval<K>>,
    present: impl IntoIterator<Item = K>,
) -> Plan<K> {
    let mut around: FxHashMap<K, Neighbourhood<K>> = FxHashMap::default();
    for iv in touching {
        let at_prev = pos.prev.is_some_and(|p| iv.contains(p));
        let slot = around.entry(iv.key.clone()).or_default();
        if at_prev {
            slot.0 = Some(iv);
        } else {
            slot.1 = Some(iv);
        }
    }
    let mut plan = Plan::default();
    for key in present {
        match around.remove(&key) {
            Some((before, after)) => extend(pos, key, before, after, &mut plan),
            None => plan.insert.push((key, pos.at, pos.new_to())),
        }
    }
    // Facts absent from the new snapshot: an interval spanning its position is cut in two.
    // The second half is a copy of the stored interval's fact, which the caller knows by id.
    for (before, _) in around.into_values() {
        if let Some(iv) = before.filter(|iv| iv.to >= pos.at) {
            plan.set_to.push((iv.id, pos.prev.expect("contains prev")));
            if let Some(next) = pos.next {
                plan.copy.push((iv.id, next, iv.to));
            }
        }
    }
    plan
}

/// A fact present in the new snapshot, with its intervals at the neighbours.
fn extend<K>(
    pos: Position,
    key: K,
    before: Option<Interval<K>>,
    after: Option<Interval<K>>,
    plan: &mut Plan<K>,
) {
    match (before, after) {
        (Some(b), _) if b.to >= pos.at => {} // already spans the new position
        (Some(b), Some(a)) => {
            plan.set_to.push((b.id, a.to));
            plan.delete.push(a.id);
        }
        (Some(b), None) => plan.set_to.push((b.id, pos.new_to())),
        (None, Some(a)) => plan.set_from.push((a.id, pos.at)),
        (None, None) => plan.insert.push((key, pos.at, pos.new_to())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A brute-force interval store that executes plans.
    #[derive(Default)]
    struct Model {
        ords: BTreeSet<i64>,
        rows: BTreeMap<i64, Interval<u8>>,
        next_id: i64,
    }

    impl Model {
        fn insert(&mut self, at: i64, facts: &BTreeSet<u8>) {
            let prev = self.ords.range(..at).next_back().copied();
            let next = self.ords.range(at + 1..).next().copied();
            let pos = Position { prev, at, next };
            let (lo, hi) = pos.window();
            let touching = self
                .rows
                .values()
                .filter(|iv| iv.to >= lo && iv.from <= hi)
                .cloned()
                .collect();
            let plan = plan_insert(pos, touching, facts.iter().copied());
            for (id, to) in plan.set_to {
                self.rows.get_mut(&id).unwrap().to = to;
            }
            for (id, from) in plan.set_from {
                self.rows.get_mut(&id).unwrap().from = from;
            }
            for (id, from, to) in plan.copy {
                let key = self.rows[&id].key;
                self.next_id += 1;
                let id = self.next_id;
                self.rows.insert(id, Interval { id, key, from, to });
            }
            for id in plan.delete {
                self.rows.remove(&id);
            }
            for (key, from, to) in plan.insert {
                self.next_id += 1;
                let id = self.next_id;
                self.rows.insert(id, Interval { id, key, from, to });
            }
            self.ords.insert(at);
        }

        fn facts_at(&self, ord: i64) -> BTreeSet<u8> {
            self.rows
                .values()
                .filter(|iv| iv.contains(ord))
                .map(|iv| iv.key)
                .collect()
        }

        fn canonical(&self) -> BTreeSet<(u8, i64, i64)> {
            self.rows
                .values()
                .map(|iv| (iv.key, iv.from, iv.to))
                .collect()
        }
    }

    fn history() -> impl Strategy<Value = Vec<(i64, BTreeSet<u8>)>> {
        prop::collection::btree_map(0i64..60, prop::collection::btree_set(0u8..12, 0..8), 1..12)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn any_import_order_reproduces_every_snapshot(
            weeks in history(),
            order in prop::collection::vec(any::<prop::sample::Index>(), 12),
        ) {
            let mut shuffled = weeks.clone();
            for (i, idx) in order.iter().enumerate().take(shuffled.len()) {
                let j = idx.index(shuffled.len());
                shuffled.swap(i, j);
            }
            let mut in_order = Model::default();
            for (at, facts) in &weeks {
                in_order.insert(*at, facts);
            }
            let mut any_order = Model::default();
            for (at, facts) in &shuffled {
                any_order.insert(*at, facts);
            }
            for (at, facts) in &weeks {
                prop_assert_eq!(&any_order.facts_at(*at), facts);
            }
            prop_assert_eq!(any_order.canonical(), in_order.canonical());
            // Maximal: no two intervals of one fact meet at neighbouring snapshots, and only
            // intervals reaching the newest snapshot are open.
            let ords: Vec<i64> = any_order.ords.iter().copied().collect();
            let newest = *ords.last().unwrap();
            for iv in any_order.rows.values() {
                prop_assert!(ords.contains(&iv.from));
                prop_assert!(iv.to == OPEN || (ords.contains(&iv.to) && iv.to != newest));
            }
        }
    }

    #[test]
    fn an_unchanged_appended_week_changes_nothing() {
        let mut m = Model::default();
        let facts: BTreeSet<u8> = [1, 2, 3].into();
        m.insert(10, &facts);
        let before = m.canonical();
        m.insert(20, &facts);
        assert_eq!(m.canonical(), before);
        assert_eq!(before, [(1, 10, OPEN), (2, 10, OPEN), (3, 10, OPEN)].into());
    }

    #[test]
    fn a_backfilled_week_splits_and_merges() {
        let mut m = Model::default();
        m.insert(10, &[1, 2].into());
        m.insert(30, &[1, 2].into());
        m.insert(20, &[1, 3].into());
        assert_eq!(
            m.canonical(),
            [(1, 10, OPEN), (2, 10, 10), (2, 30, OPEN), (3, 20, 20)].into()
        );
        m.insert(25, &[1, 2].into());
        assert_eq!(
            m.canonical(),
            [(1, 10, OPEN), (2, 10, 10), (2, 25, OPEN), (3, 20, 20)].into()
        );
    }
}
