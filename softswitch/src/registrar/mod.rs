//! The registrar (RFC 3261 §10): digest authentication, the abuse guard, the REGISTER
//! planner and the location cache. [`Registrar::handle_register`] turns a validated
//! REGISTER into a [`RegisterDecision`]; the driver answers at once or after the
//! database commit. Nothing here does I/O.

mod auth;
mod binding;
mod cache;
pub mod digest;
mod guard;
pub mod nonce;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

pub use auth::{AuthOutcome, Authenticator};
pub use binding::{
    Binding, ContactRequest, Contacts, Limits, Plan, PlanError, RegisterRequest, plan,
    uri_equivalent,
};
pub use cache::LocationCache;
pub use guard::{Admission, Guard, GuardEvent};

use crate::config::Config;
use crate::sip::transaction::Peer;
use crate::sip::wire::{ContactList, HeaderName, Host, Message, RequestHeads, Uri, unquote};
use crate::store::Change;

/// What to do with a REGISTER.
#[derive(Debug)]
pub enum RegisterDecision {
    /// Answer now with this status.
    Reply {
        status: u16,
        reason: Cow<'static, str>,
        headers: Vec<(&'static str, String)>,
    },
    /// Answer 401 with fresh challenges.
    Challenge { stale: bool },
    /// Nothing to write (a query, or a refresh of nothing): 200 now with these bindings.
    Bindings(Vec<Binding>),
    /// Write `changes`, then answer 200 with `bindings`.
    Commit {
        aor: String,
        changes: Vec<Change>,
        bindings: Vec<Binding>,
    },
}

impl RegisterDecision {
    fn reply(status: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        RegisterDecision::Reply {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Registrar {
    domain: String,
    local_ips: Vec<IpAddr>,
    /// `[sip] aliases` that are names, lowercased.
    alias_names: Vec<String>,
    listens_on_wildcard: bool,
    limits: Limits,
    max_contacts: HashMap<String, usize>,
    pub auth: Authenticator,
    pub guard: Guard,
    pub location: LocationCache,
}

impl Registrar {
    pub fn new(config: &Config, auth: Authenticator) -> Registrar {
        let r = &config.registrar;
        Registrar {
            domain: config.sip.domain.clone(),
            local_ips: config
                .sip
                .listen
                .iter()
                .map(|l| l.addr.ip())
                .chain(
                    config
                        .sip
                        .aliases
                        .iter()
                        .filter_map(|a| a.trim_matches(['[', ']']).parse::<IpAddr>().ok()),
                )
                .collect(),
            alias_names: config
                .sip
                .aliases
                .iter()
                .filter(|a| a.trim_matches(['[', ']']).parse::<IpAddr>().is_err())
                .map(|a| a.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            listens_on_wildcard: config
                .sip
                .listen
                .iter()
                .any(|l| l.addr.ip().is_unspecified()),
            limits: Limits {
                min_expires: r.min_expires,
                max_expires: r.max_expires,
                default_expires: r.default_expires,
                max_contacts: r.max_contacts,
            },
            max_contacts: config
                .endpoints
                .iter()
                .filter_map(|e| e.max_contacts.map(|m| (e.name.get_ref().clone(), m)))
                .collect(),
            auth,
            guard: Guard::new(&config.security),
            location: LocationCache::default(),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn min_expires(&self) -> u32 {
        self.limits.min_expires
    }

    /// Whether a URI host names this switch: its domain, or any address it listens on
    /// (many phones are set up with the IP), so both reach the same AOR.
    pub fn is_local_host(&self, host: &Host<'_>) -> bool {
        match host.ip() {
            Some(ip) => {
                self.local_ips.contains(&ip)
                    || (self.listens_on_wildcard && (ip.is_loopback() || is_own_address(ip)))
            }
            None => {
                let Host::Name(name) = host else { return false };
                let name = name.trim_end_matches('.');
                name.eq_ignore_ascii_case(&self.domain)
                    || name.eq_ignore_ascii_case("localhost")
                    || self
                        .alias_names
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(name))
            }
        }
    }

    /// The AOR key of a local user.
    pub fn aor(&self, user: &str) -> String {
        format!("{user}@{}", self.domain)
    }

    pub fn handle_register(
        &self,
        msg: &Message,
        heads: &RequestHeads<'_>,
        source: Peer,
        wall_now: i64,
        now: Instant,
        events: &mut Vec<GuardEvent>,
    ) -> RegisterDecision {
        let Uri::Sip(ruri) = &heads.uri else {
            return RegisterDecision::reply(416, "Unsupported URI Scheme");
        };
        if !self.is_local_host(&ruri.host) {
            return RegisterDecision::reply(404, "Not Found (domain not served here)");
        }
        let to_user = match heads.to.uri.as_sip() {
            Some(u) if self.is_local_host(&u.host) => match u.user {
                Some(user) => user,
                None => return RegisterDecision::reply(404, "Not Found (no user in To)"),
            },
            Some(_) => return RegisterDecision::reply(404, "Not Found (domain not served here)"),
            None => return RegisterDecision::reply(416, "Unsupported URI Scheme"),
        };

        match self.auth.check(msg, HeaderName::Authorization, wall_now) {
            AuthOutcome::Challenge { stale } => return RegisterDecision::Challenge { stale },
            AuthOutcome::Malformed(reason) => return RegisterDecision::reply(400, reason),
            AuthOutcome::Failed { user } => {
                tracing::warn!(%user, source = %source.addr, "authentication failed");
                if let Some(ev) = self.guard.record_failure(source.addr.ip(), now) {
                    events.push(ev);
                }
                return RegisterDecision::Challenge { stale: false };
            }
            AuthOutcome::Authenticated { user } => {
                self.guard.record_success(source.addr.ip());
                if user != to_user {
                    return RegisterDecision::reply(
                        403,
                        "Forbidden (credentials are not for this AOR)",
                    );
                }
            }
        }

        let request = match self.register_request(msg, heads, to_user, source) {
            Ok(r) => r,
            Err(reason) => return RegisterDecision::reply(400, reason),
        };
        let limits = Limits {
            max_contacts: self
                .max_contacts
                .get(to_user)
                .copied()
                .unwrap_or(self.limits.max_contacts),
            ..self.limits
        };
        let outcome = self.location.with_aor(&request.aor, |list| {
            let p = plan(list, &request, wall_now, &limits)?;
            if p.writes_anything() {
                // The cache changes now; the 200 waits for the commit.
                *list = p.bindings.clone();
            }
            Ok::<Plan, PlanError>(p)
        });
        match outcome {
            Err(PlanError::IntervalTooBrief { min }) => RegisterDecision::Reply {
                status: 423,
                reason: "Interval Too Brief".into(),
                headers: vec![("Min-Expires", min.to_string())],
            },
            Err(PlanError::BadStar) => {
                RegisterDecision::reply(400, "Contact: * needs Expires: 0 and no other contacts")
            }
            Err(PlanError::OutOfOrder) => {
                RegisterDecision::reply(400, "CSeq out of order for this Call-ID")
            }
            Ok(p) if !p.writes_anything() => RegisterDecision::Bindings(p.bindings),
            Ok(p) => {
                let mut changes: Vec<Change> = p
                    .removals
                    .iter()
                    .map(|contact| Change::Remove {
                        aor: request.aor.clone(),
                        contact: contact.clone(),
                    })
                    .collect();
                changes.extend(p.upserts.into_iter().map(Change::Upsert));
                RegisterDecision::Commit {
                    aor: request.aor,
                    changes,
                    bindings: p.bindings,
                }
            }
        }
    }

    fn register_request(
        &self,
        msg: &Message,
        heads: &RequestHeads<'_>,
        user: &str,
        source: Peer,
    ) -> Result<RegisterRequest, Cow<'static, str>> {
        let contacts = match msg
            .contacts()
            .map_err(|e| format!("Malformed Contact ({})", e.what))?
        {
            ContactList::Star => Contacts::Star,
            ContactList::Addresses(list) if list.is_empty() => Contacts::Query,
            ContactList::Addresses(list) => Contacts::List(
                list.iter()
                    .map(|c| {
                        Ok(ContactRequest {
                            uri: c.uri_text.to_owned(),
                            expires: c.params.value("expires").map(lenient_delta).transpose()?,
                            q: c.params.value("q").and_then(parse_q),
                            instance: c
                                .params
                                .value("+sip.instance")
                                .map(|v| unquote(v).to_owned()),
                            reg_id: c.params.value("reg-id").and_then(|v| v.parse().ok()),
                        })
                    })
                    .collect::<Result<_, Cow<'static, str>>>()?,
            ),
        };
        Ok(RegisterRequest {
            aor: self.aor(user),
            call_id: heads.call_id.to_owned(),
            cseq: heads.cseq.seq,
            expires_header: msg
                .expires()
                .transpose()
                .map_err(|e| format!("Malformed Expires ({})", e.what))?,
            contacts,
            path: msg
                .header_all(HeaderName::Path)
                .map(str::to_owned)
                .collect(),
            transport: source.transport,
            source: source.addr,
            user_agent: msg
                .header(HeaderName::UserAgent)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// The Contact header values of a 200 OK: every binding with its remaining time.
    pub fn contact_values(bindings: &[Binding], now: i64) -> Vec<String> {
        bindings
            .iter()
            .map(|b| format!("<{}>;expires={}", b.contact, (b.expires_at - now).max(0)))
            .collect()
    }
}

/// A Contact `expires` parameter. RFC 3261 §10.2.1.1 lets a huge value stand for the
/// longest time, so it is read saturating instead of refused.
fn lenient_delta(v: &str) -> Result<u32, Cow<'static, str>> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Malformed Contact expires parameter".into());
    }
    Ok(v.parse::<u64>()
        .map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32))
}

/// q = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), kept in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = int.parse().ok()?;
    let frac_val: u16 = format!("{frac:0<3}").parse().ok()?;
    let q = int * 1000 + frac_val;
    (q <= 1000).then_some(q)
}

/// Whether `ip` is configured on this machine (a wildcard listener answers on all).
fn is_own_address(ip: IpAddr) -> bool {
    // Binding a UDP socket to the address succeeds only for local addresses.
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.333"), Some(333));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
    }

    #[test]
    fn huge_contact_expiry_saturates() {
        assert_eq!(lenient_delta("280297596632815"), Ok(u32::MAX));
        assert!(lenient_delta("-1").is_err());
    }
}
