//! Session timers (RFC 4028) toward the caller: the interval the caller asks for is
//! kept (never below our Min-SE), the caller refreshes when it can, and a session
//! nobody refreshed in time is torn down rather than left hanging.

use super::*;
use crate::call::SessionTimer;

/// The smallest interval accepted (RFC 4028 §4: at least 90 s).
pub const MIN_SE: u32 = 90;

/// What an INVITE asks for.
pub enum SessionRequest {
    None,
    Timer(SessionTimer),
    /// 422 with our Min-SE.
    TooSmall,
}

/// Reads Session-Expires, Min-SE and Supported: timer from an initial INVITE.
pub fn requested(msg: &Message) -> SessionRequest {
    let Some(value) = msg.header(HeaderName::SessionExpires) else {
        return SessionRequest::None;
    };
    let mut parts = value.split(';');
    let Some(interval) = parts.next().and_then(|d| d.trim().parse::<u32>().ok()) else {
        return SessionRequest::None;
    };
    if interval < MIN_SE {
        return SessionRequest::TooSmall;
    }
    let refresher = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("refresher"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    let caller_supports = msg
        .option_tags(HeaderName::Supported)
        .chain(msg.option_tags(HeaderName::Require))
        .any(|t| t.eq_ignore_ascii_case("timer"));
    // §9: a refresher the caller chose stands; otherwise the caller refreshes if it
    // can, and we do when it cannot.
    let we_refresh = match refresher.as_deref() {
        Some("uas") => true,
        Some("uac") => false,
        _ => !caller_supports,
    };
    SessionRequest::Timer(SessionTimer {
        interval,
        caller_supports,
        we_refresh,
    })
}

impl CallAgent<'_> {
    /// From the answer or the last refresh: when we refresh, or when the caller's
    /// refresh is overdue (§10: a third of the interval, at most 32 s, before it ends).
    pub(super) fn arm_session_timer(&mut self, call: &mut Call, now: Instant) {
        call.disarm(Timer::SessionRefresh);
        call.disarm(Timer::SessionExpiry);
        let Some(t) = call.a.session else {
            return;
        };
        let interval = Duration::from_secs(u64::from(t.interval));
        if t.we_refresh {
            call.arm(now + interval / 2, Timer::SessionRefresh);
        } else {
            let margin = (interval / 3).min(Duration::from_secs(32));
            call.arm(now + interval - margin, Timer::SessionExpiry);
        }
    }

    /// Our refresh: an UPDATE without a body, which changes no media.
    pub(super) fn refresh_session(&mut self, call: &mut Call, now: Instant) {
        let Some(t) = call.a.session else {
            return;
        };
        let cseq = call.next_cseq(Side::Caller);
        let route = call.route(Side::Caller);
        let headers = [("Session-Expires", format!("{};refresher=uas", t.interval))];
        let bytes = self.dialog_request(&route, &Method::Update, cseq, &headers, None);
        match self.layer.send_request(now, bytes, route.peer) {
            Ok(key) => self.calls.index_client(key, call.id, ClientUse::Own),
            Err(e) => tracing::debug!(error = %e, "session refresh not sent"),
        }
        self.arm_session_timer(call, now);
    }
}
