//! What a group commit writes for calls: `open_calls` rows while calls are in
//! progress, and a CDR when each ends.
//!
//! A busy switch hands the writer thousands of these per second. Every statement
//! is a round trip to the database (for SQLite, to its worker thread and back), so
//! a batch is first reduced to what its end state needs, and then written as a few
//! multi-row statements whatever its size: a call that starts and ends within one
//! batch never touches `open_calls`, and one answered in the batch it started in is
//! inserted answered.

use std::collections::{HashMap, HashSet};

use super::cdr::{Cdr, OpenCall};
use super::location::Change;

/// Rows per statement: with 19 columns, 100 CDRs bind 1,900 parameters, far below
/// SQLite's limit of 32,766 and PostgreSQL's of 65,535.
pub(super) const ROWS_PER_STATEMENT: usize = 100;

/// The batch's call changes, reduced to their end state.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Plan<'a> {
    /// Calls still in progress at the end of the batch that it started.
    pub(super) opened: Vec<OpenCall>,
    /// Calls started in an earlier batch and answered in this one.
    pub(super) answered: Vec<(&'a str, i64)>,
    /// Calls that ended, each once, in submission order.
    pub(super) cdrs: Vec<&'a Cdr>,
    /// Ended calls that started in an earlier batch: their `open_calls` row goes.
    pub(super) closed: Vec<&'a str>,
}

impl<'a> Plan<'a> {
    pub(super) fn of(changes: &'a [Change]) -> Plan<'a> {
        let mut plan = Plan::default();
        let mut ended = HashSet::new();
        for change in changes {
            if let Change::Cdr(c) = change
                && ended.insert(c.uniqueid.as_str())
            {
                plan.cdrs.push(&**c);
            }
        }
        let mut started: HashMap<&str, usize> = HashMap::new();
        let mut answered: HashMap<&str, usize> = HashMap::new();
        let mut started_here = HashSet::new();
        for change in changes {
            match change {
                Change::Opened(o) => {
                    started_here.insert(o.uniqueid.as_str());
                    if ended.contains(o.uniqueid.as_str())
                        || started.contains_key(o.uniqueid.as_str())
                    {
                        continue;
                    }
                    started.insert(&o.uniqueid, plan.opened.len());
                    plan.opened.push((**o).clone());
                }
                Change::Answered { uniqueid, at } => {
                    if ended.contains(uniqueid.as_str()) {
                        continue;
                    }
                    if let Some(&i) = started.get(uniqueid.as_str()) {
                        plan.opened[i].answer_at = Some(*at);
                    } else if let Some(&i) = answered.get(uniqueid.as_str()) {
                        plan.answered[i].1 = *at;
                    } else {
                        answered.insert(uniqueid, plan.answered.len());
                        plan.answered.push((uniqueid, *at));
                    }
                }
                Change::Cdr(_) | Change::Upsert(_) | Change::Remove { .. } => {}
            }
        }
        plan.closed = plan
            .cdrs
            .iter()
            .map(|c| c.uniqueid.as_str())
            .filter(|u| !started_here.contains(u))
            .collect();
        plan
    }
}

/// Writes a [`Plan`] inside the transaction `$tx` of either database.
macro_rules! write_plan {
    ($tx:expr, $plan:expr) => {{
        let plan = $plan;
        for chunk in plan.opened.chunks($crate::store::call_records::ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO open_calls (uniqueid, node, start_at, answer_at, src, dst, dcontext, clid) ",
            );
            qb.push_values(chunk, |mut row, o| {
                row.push_bind(&o.uniqueid)
                    .push_bind(&o.node)
                    .push_bind(o.start_at)
                    .push_bind(o.answer_at)
                    .push_bind(&o.src)
                    .push_bind(&o.dst)
                    .push_bind(&o.dcontext)
                    .push_bind(&o.clid);
            });
            qb.push(" ON CONFLICT (uniqueid) DO NOTHING");
            qb.build().execute(&mut *$tx).await?;
        }
        for chunk in plan.answered.chunks($crate::store::call_records::ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new("UPDATE open_calls SET answer_at = CASE uniqueid");
            for (uniqueid, at) in chunk {
                qb.push(" WHEN ").push_bind(*uniqueid).push(" THEN ").push_bind(*at);
            }
            qb.push(" END WHERE uniqueid IN (");
            let mut ids = qb.separated(", ");
            for (uniqueid, _) in chunk {
                ids.push_bind(*uniqueid);
            }
            qb.push(")");
            qb.build().execute(&mut *$tx).await?;
        }
        for chunk in plan.cdrs.chunks($crate::store::call_records::ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::new(concat!(
                "INSERT INTO cdr (",
                $crate::store::cdr::cdr_columns!(),
                ") "
            ));
            qb.push_values(chunk, |mut row, c| {
                $crate::store::cdr::bind_cdr!(row, *c, push_bind);
            });
            qb.push(" ON CONFLICT (uniqueid) DO NOTHING");
            qb.build().execute(&mut *$tx).await?;
        }
        for chunk in plan.closed.chunks($crate::store::call_records::ROWS_PER_STATEMENT * 4) {
            let mut qb = sqlx::QueryBuilder::new("DELETE FROM open_calls WHERE uniqueid IN (");
            let mut ids = qb.separated(", ");
            for uniqueid in chunk {
                ids.push_bind(*uniqueid);
            }
            qb.push(")");
            qb.build().execute(&mut *$tx).await?;
        }
    }};
}
pub(super) use write_plan;

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(id: &str) -> Change {
        Change::Opened(Box::new(OpenCall {
            uniqueid: id.into(),
            node: "n".into(),
            start_at: 1,
            answer_at: None,
            src: "1001".into(),
            dst: "1002".into(),
            dcontext: "internal".into(),
            clid: String::new(),
        }))
    }

    fn answered(id: &str, at: i64) -> Change {
        Change::Answered {
            uniqueid: id.into(),
            at,
        }
    }

    fn cdr(id: &str) -> Change {
        Change::Cdr(Box::new(Cdr {
            uniqueid: id.into(),
            ..Cdr::default()
        }))
    }

    fn ids<'a>(cdrs: &[&'a Cdr]) -> Vec<&'a str> {
        cdrs.iter().map(|c| c.uniqueid.as_str()).collect()
    }

    #[test]
    fn a_call_that_starts_and_ends_in_one_batch_skips_open_calls() {
        let changes = [opened("a"), answered("a", 5), cdr("a")];
        let plan = Plan::of(&changes);
        assert!(plan.opened.is_empty() && plan.answered.is_empty() && plan.closed.is_empty());
        assert_eq!(ids(&plan.cdrs), ["a"]);
    }

    #[test]
    fn an_answer_in_the_batch_that_opened_the_call_is_inserted_with_it() {
        let changes = [opened("a"), opened("b"), answered("a", 5), answered("a", 6)];
        let plan = Plan::of(&changes);
        let rows: Vec<_> = plan
            .opened
            .iter()
            .map(|o| (o.uniqueid.as_str(), o.answer_at))
            .collect();
        assert_eq!(rows, [("a", Some(6)), ("b", None)]);
        assert!(plan.answered.is_empty() && plan.cdrs.is_empty());
    }

    #[test]
    fn calls_from_earlier_batches_are_updated_and_closed() {
        let changes = [
            answered("old", 7),
            cdr("older"),
            answered("old", 8),
            cdr("older"),
        ];
        let plan = Plan::of(&changes);
        assert!(plan.opened.is_empty());
        assert_eq!(plan.answered, [("old", 8)]);
        // A record submitted twice is written once, as the first.
        assert_eq!(ids(&plan.cdrs), ["older"]);
        assert_eq!(plan.closed, ["older"]);
    }

    #[test]
    fn records_keep_their_submission_order() {
        let changes = [cdr("c"), opened("x"), cdr("a"), cdr("b")];
        let plan = Plan::of(&changes);
        assert_eq!(ids(&plan.cdrs), ["c", "a", "b"]);
        assert_eq!(plan.closed, ["c", "a", "b"]);
        assert_eq!(plan.opened.len(), 1);
    }
}
