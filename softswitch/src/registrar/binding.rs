//! Bindings and the pure REGISTER planner (RFC 3261 §10.3 steps 6–8). Given the AOR's
//! current bindings and a REGISTER, [`plan`] decides the new set and what the database
//! must write, or which error the request deserves. No clock, no I/O.

use std::net::SocketAddr;

use crate::sip::transaction::TransportKind;
use crate::sip::wire::{Uri, percent_decode};

/// One registered contact of an AOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub aor: String,
    pub contact: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    /// Contact q-value in thousandths.
    pub q: Option<u16>,
    /// RFC 5626 `+sip.instance`.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// RFC 3327 Path, in the order received.
    pub path: Vec<String>,
    /// Where the REGISTER came from: requests to this contact go back there, which is
    /// what makes phones behind NAT reachable.
    pub transport: TransportKind,
    pub source: SocketAddr,
    pub user_agent: String,
    pub updated_at: i64,
}

/// One Contact of a REGISTER, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    pub uri: String,
    pub expires: Option<u32>,
    pub q: Option<u16>,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact header: list the bindings.
    Query,
    /// `Contact: *` — remove every binding (only with `Expires: 0`).
    Star,
    List(Vec<ContactRequest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub expires_header: Option<u32>,
    pub contacts: Contacts,
    pub path: Vec<String>,
    pub transport: TransportKind,
    pub source: SocketAddr,
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// 423 with `Min-Expires`.
    IntervalTooBrief { min: u32 },
    /// 400: `*` with a non-zero expiry or beside other contacts.
    BadStar,
    /// 400: same Call-ID with a CSeq not above the stored one (§10.3 step 7).
    OutOfOrder,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The AOR's bindings after the request, for the 200 OK.
    pub bindings: Vec<Binding>,
    pub upserts: Vec<Binding>,
    /// Contacts to delete (including ones that had already expired).
    pub removals: Vec<String>,
}

impl Plan {
    pub fn writes_anything(&self) -> bool {
        !self.upserts.is_empty() || !self.removals.is_empty()
    }
}

pub fn plan(
    existing: &[Binding],
    req: &RegisterRequest,
    now: i64,
    limits: &Limits,
) -> Result<Plan, PlanError> {
    let mut out = Plan::default();
    let mut live: Vec<Binding> = Vec::with_capacity(existing.len() + 1);
    for b in existing {
        if b.expires_at > now {
            live.push(b.clone());
        } else {
            out.removals.push(b.contact.clone());
        }
    }

    match &req.contacts {
        Contacts::Query => {}
        Contacts::Star => {
            if req.expires_header != Some(0) {
                return Err(PlanError::BadStar);
            }
            for b in &live {
                if b.call_id == req.call_id && req.cseq <= b.cseq {
                    return Err(PlanError::OutOfOrder);
                }
            }
            out.removals.extend(live.drain(..).map(|b| b.contact));
        }
        Contacts::List(list) => {
            // Check the whole request before changing anything: it succeeds or fails as a
            // unit (§10.3: "the registrar ... MUST process ... atomically").
            let mut decided = Vec::with_capacity(list.len());
            for c in list {
                let expires = c
                    .expires
                    .or(req.expires_header)
                    .unwrap_or(limits.default_expires);
                if expires != 0 && expires < limits.min_expires {
                    return Err(PlanError::IntervalTooBrief {
                        min: limits.min_expires,
                    });
                }
                let pos = live.iter().position(|b| same_binding(b, c));
                if let Some(i) = pos
                    && live[i].call_id == req.call_id
                    && req.cseq <= live[i].cseq
                {
                    return Err(PlanError::OutOfOrder);
                }
                decided.push((c, expires.min(limits.max_expires)));
            }
            for (c, expires) in decided {
                let pos = live.iter().position(|b| same_binding(b, c));
                if expires == 0 {
                    if let Some(i) = pos {
                        out.removals.push(live.remove(i).contact);
                    }
                    continue;
                }
                let binding = Binding {
                    aor: req.aor.clone(),
                    contact: c.uri.clone(),
                    expires_at: now + expires as i64,
                    call_id: req.call_id.clone(),
                    cseq: req.cseq,
                    q: c.q,
                    instance: c.instance.clone(),
                    reg_id: c.reg_id,
                    path: req.path.clone(),
                    transport: req.transport,
                    source: req.source,
                    user_agent: req.user_agent.clone(),
                    updated_at: now,
                };
                match pos {
                    Some(i) => {
                        // An instance match may come with a new URI (new port after a
                        // restart): the old row goes.
                        if live[i].contact != binding.contact {
                            out.removals.push(live[i].contact.clone());
                        }
                        live[i] = binding.clone();
                    }
                    None => live.push(binding.clone()),
                }
                out.removals.retain(|r| *r != binding.contact);
                out.upserts.push(binding);
            }
            // Past the limit, the least recently refreshed bindings make room.
            while live.len() > limits.max_contacts.max(1) {
                let oldest = live
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, b)| (b.updated_at, b.expires_at))
                    .map(|(i, _)| i)
                    .expect("non-empty");
                let gone = live.remove(oldest);
                out.upserts.retain(|u| u.contact != gone.contact);
                out.removals.push(gone.contact);
            }
        }
    }
    out.bindings = live;
    Ok(out)
}

/// RFC 5626 §6: a contact with the same `+sip.instance` (and `reg-id`, when given) is the
/// same flow even if its URI changed; otherwise URIs are compared per RFC 3261 §19.1.4.
fn same_binding(b: &Binding, c: &ContactRequest) -> bool {
    match (&b.instance, &c.instance) {
        (Some(bi), Some(ci)) => bi == ci && b.reg_id == c.reg_id,
        _ => uri_equivalent(&b.contact, &c.uri),
    }
}

/// URI equality after RFC 3261 §19.1.4: scheme, user (escapes decoded), password, host
/// (case-insensitive) and port must agree, and the `transport`, `user`, `ttl`, `method`
/// and `maddr` parameters must agree whenever either side has them.
pub fn uri_equivalent(a: &str, b: &str) -> bool {
    let (Ok(Uri::Sip(x)), Ok(Uri::Sip(y))) = (Uri::parse(a), Uri::parse(b)) else {
        return a == b;
    };
    let host_eq = x.host.to_string().eq_ignore_ascii_case(&y.host.to_string());
    let user_eq = x.user.map(percent_decode) == y.user.map(percent_decode);
    let params_eq = ["transport", "user", "ttl", "method", "maddr"]
        .iter()
        .all(|p| match (x.params.value(p), y.params.value(p)) {
            (None, None) => true,
            (Some(u), Some(v)) => u.eq_ignore_ascii_case(v),
            _ => false,
        });
    x.secure == y.secure
        && user_eq
        && x.password == y.password
        && host_eq
        && x.port == y.port
        && params_eq
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        min_expires: 60,
        max_expires: 3600,
        default_expires: 3600,
        max_contacts: 3,
    };

    fn contact(uri: &str, expires: Option<u32>) -> ContactRequest {
        ContactRequest {
            uri: uri.into(),
            expires,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    fn req(call_id: &str, cseq: u32, expires: Option<u32>, contacts: Contacts) -> RegisterRequest {
        RegisterRequest {
            aor: "1001@pbx.local".into(),
            call_id: call_id.into(),
            cseq,
            expires_header: expires,
            contacts,
            path: vec![],
            transport: TransportKind::Udp,
            source: "192.0.2.5:5062".parse().unwrap(),
            user_agent: "test".into(),
        }
    }

    fn register(existing: &[Binding], r: &RegisterRequest, now: i64) -> Plan {
        plan(existing, r, now, &LIMITS).unwrap()
    }

    #[test]
    fn new_binding_takes_header_expiry_capped_at_max() {
        let p = register(
            &[],
            &req(
                "c",
                1,
                Some(7200),
                Contacts::List(vec![contact("sip:1001@192.0.2.5:5062", None)]),
            ),
            1000,
        );
        assert_eq!(p.bindings.len(), 1);
        assert_eq!(p.bindings[0].expires_at, 1000 + 3600);
        assert_eq!(p.upserts.len(), 1);
        assert!(p.removals.is_empty());
    }

    #[test]
    fn contact_param_beats_header_and_too_brief_is_refused() {
        let p = register(
            &[],
            &req(
                "c",
                1,
                Some(3600),
                Contacts::List(vec![contact("sip:a@h", Some(120))]),
            ),
            0,
        );
        assert_eq!(p.bindings[0].expires_at, 120);
        let e = plan(
            &[],
            &req(
                "c",
                1,
                Some(30),
                Contacts::List(vec![contact("sip:a@h", None)]),
            ),
            0,
            &LIMITS,
        );
        assert_eq!(e, Err(PlanError::IntervalTooBrief { min: 60 }));
    }

    #[test]
    fn refresh_updates_and_zero_removes() {
        let first = register(
            &[],
            &req("c", 1, None, Contacts::List(vec![contact("sip:a@h", None)])),
            0,
        );
        let refresh = register(
            &first.bindings,
            &req(
                "c",
                2,
                Some(600),
                Contacts::List(vec![contact("sip:a@H", None)]),
            ),
            10,
        );
        assert_eq!(
            refresh.bindings.len(),
            1,
            "host compares case-insensitively"
        );
        assert_eq!(refresh.bindings[0].expires_at, 610);
        let gone = register(
            &refresh.bindings,
            &req(
                "c",
                3,
                Some(0),
                Contacts::List(vec![contact("sip:a@h", None)]),
            ),
            20,
        );
        assert!(gone.bindings.is_empty());
        assert_eq!(gone.removals, vec!["sip:a@H".to_string()]);
    }

    #[test]
    fn stale_cseq_on_the_same_call_id_fails_but_a_new_call_id_wins() {
        let first = register(
            &[],
            &req("c", 5, None, Contacts::List(vec![contact("sip:a@h", None)])),
            0,
        );
        let again = plan(
            &first.bindings,
            &req("c", 5, None, Contacts::List(vec![contact("sip:a@h", None)])),
            1,
            &LIMITS,
        );
        assert_eq!(again, Err(PlanError::OutOfOrder));
        let other = register(
            &first.bindings,
            &req("d", 1, None, Contacts::List(vec![contact("sip:a@h", None)])),
            1,
        );
        assert_eq!(other.bindings[0].call_id, "d");
    }

    #[test]
    fn star_needs_expires_zero_and_clears_everything() {
        let two = register(
            &[],
            &req(
                "c",
                1,
                None,
                Contacts::List(vec![contact("sip:a@h", None), contact("sip:b@h", None)]),
            ),
            0,
        );
        assert_eq!(two.bindings.len(), 2);
        assert_eq!(
            plan(
                &two.bindings,
                &req("z", 1, Some(60), Contacts::Star),
                1,
                &LIMITS
            ),
            Err(PlanError::BadStar)
        );
        assert_eq!(
            plan(
                &two.bindings,
                &req("z", 1, None, Contacts::Star),
                1,
                &LIMITS
            ),
            Err(PlanError::BadStar)
        );
        let cleared = register(&two.bindings, &req("z", 1, Some(0), Contacts::Star), 1);
        assert!(cleared.bindings.is_empty());
        assert_eq!(cleared.removals.len(), 2);
    }

    #[test]
    fn query_changes_nothing_but_drops_expired() {
        let b = register(
            &[],
            &req(
                "c",
                1,
                Some(60),
                Contacts::List(vec![contact("sip:a@h", None)]),
            ),
            0,
        );
        let q = register(&b.bindings, &req("c", 2, None, Contacts::Query), 30);
        assert_eq!(q.bindings.len(), 1);
        assert!(!q.writes_anything());
        let later = register(&b.bindings, &req("c", 3, None, Contacts::Query), 61);
        assert!(later.bindings.is_empty());
        assert_eq!(later.removals, vec!["sip:a@h".to_string()]);
    }

    #[test]
    fn same_instance_replaces_a_binding_with_a_new_uri() {
        let mut c1 = contact("sip:1001@192.0.2.5:5062", None);
        c1.instance = Some("<urn:uuid:1>".into());
        c1.reg_id = Some(1);
        let first = register(&[], &req("c", 1, None, Contacts::List(vec![c1.clone()])), 0);
        let mut c2 = c1.clone();
        c2.uri = "sip:1001@192.0.2.5:6000".into();
        let second = register(
            &first.bindings,
            &req("new-call-id", 1, None, Contacts::List(vec![c2])),
            5,
        );
        assert_eq!(second.bindings.len(), 1);
        assert_eq!(second.bindings[0].contact, "sip:1001@192.0.2.5:6000");
        assert_eq!(second.removals, vec!["sip:1001@192.0.2.5:5062".to_string()]);
    }

    #[test]
    fn past_max_contacts_the_oldest_goes() {
        let mut bindings = Vec::new();
        for (i, host) in ["h1", "h2", "h3"].iter().enumerate() {
            bindings = register(
                &bindings,
                &req(
                    host,
                    1,
                    None,
                    Contacts::List(vec![contact(&format!("sip:a@{host}"), None)]),
                ),
                i as i64,
            )
            .bindings;
        }
        let p = register(
            &bindings,
            &req(
                "h4",
                1,
                None,
                Contacts::List(vec![contact("sip:a@h4", None)]),
            ),
            10,
        );
        let contacts: Vec<_> = p.bindings.iter().map(|b| b.contact.as_str()).collect();
        assert_eq!(contacts, vec!["sip:a@h2", "sip:a@h3", "sip:a@h4"]);
        assert_eq!(p.removals, vec!["sip:a@h1".to_string()]);
    }

    #[test]
    fn uri_equivalence_rules() {
        assert!(uri_equivalent(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(!uri_equivalent(
            "sip:alice@atlanta.com",
            "sip:ALICE@atlanta.com"
        ));
        assert!(!uri_equivalent(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:5060"
        ));
        assert!(!uri_equivalent(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(uri_equivalent(
            "sip:bob@biloxi.com;newparam=5",
            "sip:bob@biloxi.com;security=on"
        ));
    }
}
