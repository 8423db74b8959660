//! `Pickup(1002)`: answer, from another phone, a call that is ringing 1002.
//!
//! The ringing call and the picking one usually live on different shards, so
//! the node carries the request between them without ever holding two shard
//! locks: the picker parks and asks (`Services::request_pickup`); the node offers
//! the pickup to each shard in turn ([`CallAgent::offer_pickup`]); the ringing
//! call, if found, stops ringing, is answered and sits in a two-seat room of the
//! conference mixer; then the picker is told ([`CallAgent::pickup_done`]) and
//! takes the other seat. Each side hangs up when the other has left the room.

use super::*;

/// How long the picker waits for the node to find the ringing call.
const PICKUP_WAIT: Duration = Duration::from_secs(3);
/// How often a picked-up pair checks that the other side is still there.
const PEER_CHECK: Duration = Duration::from_millis(500);

impl CallAgent<'_> {
    /// Starts `Pickup(targets)`; the resume value when there is nothing to do.
    pub(super) fn start_pickup(
        &mut self,
        call: &mut Call,
        targets: &[String],
        now: Instant,
    ) -> Option<Resume> {
        let target = targets
            .iter()
            .map(|t| {
                // `1002`, `1002@context` or `PJSIP/1002`: the endpoint's name.
                let t = t.split('@').next().unwrap_or(t);
                t.rsplit('/').next().unwrap_or(t).trim().to_string()
            })
            .find(|t| !t.is_empty())?;
        self.svc.request_pickup(&target, &call.a.call_id);
        call.park(now + PICKUP_WAIT, Resume::Done);
        None
    }

    /// The node asks: is a call here ringing `target`? If so it is taken over,
    /// answered and seated in `room`; true when that happened.
    pub fn offer_pickup(&mut self, target: &str, room: &str, now: Instant) -> bool {
        let found = self
            .calls
            .iter()
            .filter(|c| c.phase != Phase::Ended && c.bridged.is_none() && !c.a.gone)
            .find(|c| {
                c.dial.is_some()
                    && c.relay.is_some()
                    && c.legs.iter().any(|l| {
                        l.dialed == target && matches!(l.state, LegState::Calling | LegState::Early)
                    })
            })
            .map(|c| c.id);
        let Some(mut call) = found.and_then(|id| self.calls.take(id)) else {
            return false;
        };
        tracing::info!(call = %call.uniqueid, %target, "call picked up from another phone");
        for n in call.pending_legs().collect::<Vec<_>>() {
            self.cancel_leg(&mut call, n, now);
        }
        call.disarm(Timer::DialTimeout);
        // The dialplan stays parked in Dial until this call ends; a hangup then
        // ends it as a caller hangup.
        call.dial = None;
        if let Some(r) = &call.relay {
            r.stop_playing();
        }
        self.answer_caller(&mut call, None, now);
        call.answered_at = Some(now);
        call.cdr.disposition = Some("ANSWERED");
        call.cdr.dstchannel = format!("Pickup/{target}");
        self.seat_pair(&mut call, room, now);
        self.calls.put(call);
        true
    }

    /// The node's answer to `Pickup`: the room to join, or None when nothing was
    /// ringing.
    pub fn pickup_done(&mut self, call_id: &str, room: Option<&str>, now: Instant) {
        let Some(id) = self.calls.by_call_id(call_id) else {
            return;
        };
        let Some(mut call) = self.calls.take(id) else {
            return;
        };
        if call.a.gone || call.phase == Phase::Ended || !call.waiting {
            // The picker gave up; the picked-up call notices it is alone.
            self.calls.put(call);
            return;
        }
        call.unpark();
        match room {
            None => {
                tracing::info!(call = %call.uniqueid, "nothing to pick up");
                self.drive(call, Resume::Done, now);
            }
            Some(room) => {
                if !call.a.final_sent {
                    self.answer_caller(&mut call, None, now);
                }
                self.seat_pair(&mut call, room, now);
                self.calls.put(call);
            }
        }
    }

    fn seat_pair(&mut self, call: &mut Call, room: &str, now: Instant) {
        let payload_type = playback::caller_g711(call);
        if let Some(relay) = &call.relay {
            call.seat = Some(relay.join_conference(room, payload_type));
        }
        call.waiting = true;
        call.listen = Listen::Ignore;
        call.arm(now + PEER_CHECK, Timer::PeerCheck);
    }

    /// A picked-up pair: once the other side has left the room, this one ends.
    pub(super) fn peer_check(&mut self, call: &mut Call, now: Instant) -> Option<Resume> {
        let alone = call.seat.as_ref().is_none_or(|s| s.members() < 2);
        if !alone {
            call.arm(now + PEER_CHECK, Timer::PeerCheck);
            return None;
        }
        tracing::info!(call = %call.uniqueid, "the other side of the pickup hung up");
        call.unpark();
        Some(self.hang_up_both(call, "peer_hangup", now))
    }
}
