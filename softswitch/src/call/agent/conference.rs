//! `ConfBridge(room)`: the caller joins a room of the relay's conference mixer and
//! stays until hanging up or pressing `#`; `1` toggles their microphone. Rooms
//! need no configuration: the first caller opens one, the last one out closes it.

use super::*;

impl CallAgent<'_> {
    /// Seats the caller; None while they are in the room (the dialplan waits), or
    /// the resume value when they cannot join.
    pub(super) fn join_conference(
        &mut self,
        call: &mut Call,
        room: &str,
        user_profile: Option<&str>,
        now: Instant,
    ) -> Option<Resume> {
        let room = room.trim();
        if room.is_empty() || call.relay.is_none() {
            tracing::warn!(call = %call.uniqueid, "ConfBridge needs a room name and a call with media");
            return Some(Resume::ConfBridge {
                result: "FAILED".into(),
            });
        }
        if !call.a.final_sent {
            self.answer_caller(call, None, now);
        }
        let payload_type = playback::caller_g711(call);
        let relay = call.relay.as_ref()?;
        let seat = relay.join_conference(room, payload_type);
        // The one user profile setting callers ask for most: join muted.
        if user_profile.is_some_and(|p| p.contains("muted")) {
            seat.set_muted(true);
        }
        tracing::info!(call = %call.uniqueid, room, members = seat.members(), muted = seat.muted(), "joined conference");
        call.seat = Some(seat);
        call.waiting = true;
        call.listen = Listen::Conference;
        None
    }

    /// A digit in a conference: `1` toggles mute; `#` leaves with
    /// `CONFBRIDGE_RESULT=DTMF`.
    pub(super) fn conference_digit(call: &mut Call, digit: char) -> Option<Resume> {
        let seat = call.seat.as_ref()?;
        match digit {
            '1' => {
                let muted = !seat.muted();
                seat.set_muted(muted);
                tracing::info!(call = %call.uniqueid, muted, "conference mute toggled");
                None
            }
            '#' => {
                tracing::info!(call = %call.uniqueid, "left the conference");
                Some(Resume::ConfBridge {
                    result: "DTMF".into(),
                })
            }
            _ => None,
        }
    }
}
