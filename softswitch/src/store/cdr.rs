//! Call detail records: one row per call, answered or not.

use serde::Serialize;

use super::{Store, StoreError, on_pool};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Cdr {
    pub uniqueid: String,
    pub node: String,
    /// Unix milliseconds.
    pub start_at: i64,
    pub answer_at: Option<i64>,
    pub end_at: i64,
    pub duration: i64,
    pub billsec: i64,
    pub src: String,
    pub dst: String,
    pub dcontext: String,
    pub clid: String,
    pub dstchannel: String,
    pub lastapp: String,
    pub disposition: String,
    pub hangup_cause: i64,
    /// Who or what ended the call: `caller_hangup`, `callee_hangup`, `caller_cancel`,
    /// `dialplan`, `media_timeout`, `no_ack`, `no_prack`, `session_expired`.
    pub end_reason: String,
    pub sip_status: Option<i64>,
    /// JSON object with each leg's media counters.
    pub media: String,
    /// Post-dial delay: INVITE to the first ringing, in milliseconds.
    pub pdd_ms: Option<i64>,
}

/// One CDR row; also used by the group-commit writer inside its transaction.
/// The columns of a CDR row, in the order [`bind_cdr`] binds them.
macro_rules! cdr_columns {
    () => {
        "uniqueid, node, start_at, answer_at, end_at, duration, billsec, src, dst, dcontext, \
         clid, dstchannel, lastapp, disposition, hangup_cause, end_reason, sip_status, media, pdd_ms"
    };
}
pub(super) use cdr_columns;

/// Binds a CDR's columns, in [`cdr_columns`] order, with `$bind` (`bind` on a
/// query, `push_bind` on a row of a multi-row insert).
macro_rules! bind_cdr {
    ($query:expr, $c:expr) => {
        $crate::store::cdr::bind_cdr!($query, $c, bind)
    };
    ($query:expr, $c:expr, $bind:ident) => {{
        let c = $c;
        $query
            .$bind(&c.uniqueid)
            .$bind(&c.node)
            .$bind(c.start_at)
            .$bind(c.answer_at)
            .$bind(c.end_at)
            .$bind(c.duration)
            .$bind(c.billsec)
            .$bind(&c.src)
            .$bind(&c.dst)
            .$bind(&c.dcontext)
            .$bind(&c.clid)
            .$bind(&c.dstchannel)
            .$bind(&c.lastapp)
            .$bind(&c.disposition)
            .$bind(c.hangup_cause)
            .$bind(&c.end_reason)
            .$bind(c.sip_status)
            .$bind(&c.media)
            .$bind(c.pdd_ms)
    }};
}
pub(super) use bind_cdr;

/// A call in progress as the database knows it, for closing its CDR if its node
/// dies.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenCall {
    pub uniqueid: String,
    pub node: String,
    pub start_at: i64,
    pub answer_at: Option<i64>,
    pub src: String,
    pub dst: String,
    pub dcontext: String,
    pub clid: String,
}

impl OpenCall {
    /// The CDR of a call its node took down with it: ended at the node's last sign
    /// of life, cause 38 (network out of order).
    pub fn lost_at(self, end_at: i64) -> Cdr {
        let end_at = end_at.max(self.start_at);
        Cdr {
            duration: (end_at - self.start_at) / 1000,
            billsec: self.answer_at.map_or(0, |a| (end_at - a).max(0) / 1000),
            disposition: if self.answer_at.is_some() {
                "ANSWERED"
            } else {
                "FAILED"
            }
            .into(),
            uniqueid: self.uniqueid,
            node: self.node,
            start_at: self.start_at,
            answer_at: self.answer_at,
            end_at,
            src: self.src,
            dst: self.dst,
            dcontext: self.dcontext,
            clid: self.clid,
            dstchannel: String::new(),
            lastapp: String::new(),
            hangup_cause: 38,
            end_reason: "node_lost".into(),
            sip_status: None,
            media: "{}".into(),
            pdd_ms: None,
        }
    }
}

/// A CDR already stored (the same call written twice) is left as it is: one
/// conflicting row must not fail the batch of registrations it commits with.
pub(super) const INSERT_CDR: &str = concat!(
    "INSERT INTO cdr (",
    cdr_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (uniqueid) DO NOTHING"
);

impl Store {
    pub async fn insert_cdr(&self, c: &Cdr) -> Result<(), StoreError> {
        on_pool!(self, pool => bind_cdr!(sqlx::query(INSERT_CDR), c)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The newest `limit` records, oldest first.
    pub async fn recent_cdrs(&self, limit: i64) -> Result<Vec<Cdr>, StoreError> {
        let mut rows: Vec<Cdr> = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT ", cdr_columns!(), " FROM cdr ORDER BY start_at DESC, uniqueid DESC LIMIT $1"))
            .bind(limit).fetch_all(pool).await)?;
        rows.reverse();
        Ok(rows)
    }
}
