//! Prompts to the caller (Playback, Background, SayDigits): the sound comes from the
//! node's prompt cache, is encoded for the caller's codec and played by the relay
//! session toward the caller; the dialplan is parked until it has played out.

use super::*;

/// RTP payload types the player can encode.
const PCMU: u8 = 0;
const PCMA: u8 = 8;
const G722: u8 = 9;

impl CallAgent<'_> {
    /// Starts `files` toward the caller; how long they play, or None when they
    /// cannot be played (a missing file, no media). `answer` answers the call
    /// first; otherwise an unanswered caller gets the prompt as early media (183).
    pub(super) fn play(
        &mut self,
        call: &mut Call,
        files: &[String],
        language: Option<&str>,
        answer: bool,
        now: Instant,
    ) -> Option<Duration> {
        let prompt = match self.svc.prompt(files, language) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(call = %call.uniqueid, "cannot play: {e}");
                return None;
            }
        };
        call.relay.as_ref()?;
        if !call.a.final_sent {
            if answer {
                self.answer_caller(call, None, now);
            } else {
                let sdp = self.caller_sdp(call, None);
                self.provisional_to_caller(call, 183, "Session Progress", sdp, now);
            }
        }
        let payload_type = caller_playback(call);
        let relay = call.relay.as_ref()?;
        relay.play(
            RelaySide::A,
            prompt.encode(payload_type).into(),
            payload_type,
            false,
        );
        Some(prompt.duration())
    }

    /// Plays a call-progress tone to the caller as early media (183) until
    /// [`MediaSession::stop_playing`]. False when the call has no media to play on
    /// (an INVITE without an offer) or is answered already.
    pub(super) fn early_tone(
        &mut self,
        call: &mut Call,
        tone: media::tones::Tone,
        now: Instant,
    ) -> bool {
        if call.a.final_sent || call.offer.is_none() || call.relay.is_none() {
            return false;
        }
        let Some(cadence) = media::tones::tone(&self.svc.config().media.tones, tone) else {
            return false;
        };
        let sdp = self.caller_sdp(call, None);
        self.provisional_to_caller(call, 183, "Session Progress", sdp, now);
        let payload_type = caller_playback(call);
        if let Some(relay) = &call.relay {
            relay.play(
                RelaySide::A,
                cadence.encode(payload_type).into(),
                payload_type,
                true,
            );
        }
        true
    }
}

impl CallAgent<'_> {
    /// SendDTMF: RFC 4733 events when the caller negotiated telephone-event, else
    /// the keys' tones in band. How long it takes; None without media.
    pub(super) fn send_dtmf(
        &self,
        call: &Call,
        digits: &str,
        gap_ms: u64,
        duration_ms: u64,
    ) -> Option<Duration> {
        let relay = call.relay.as_ref()?;
        let keys = digits.chars().filter(|c| !"wW".contains(*c)).count() as u64;
        let pauses: u64 = digits
            .chars()
            .map(|c| match c {
                'w' => 500,
                'W' => 1000,
                _ => 0,
            })
            .sum();
        let event_pt = call.offer.as_ref().and_then(digits::telephone_event_pt);
        match event_pt {
            Some(pt) => {
                // Events run in 20 ms steps, plus the two repeated end packets.
                let steps = (duration_ms / 20).max(2) + 2;
                relay.send_digits(
                    RelaySide::A,
                    digits,
                    pt,
                    Duration::from_millis(duration_ms),
                    Duration::from_millis(gap_ms),
                );
                Some(Duration::from_millis(keys * (steps * 20 + gap_ms) + pauses))
            }
            None => {
                let tones = media::tones::dtmf(
                    &digits.replace(['w', 'W'], ""),
                    duration_ms as u32,
                    gap_ms as u32,
                );
                let payload_type = caller_playback(call);
                relay.play(
                    RelaySide::A,
                    tones.encode(payload_type).into(),
                    payload_type,
                    false,
                );
                Some(tones.duration())
            }
        }
    }

    /// Loops a call-progress tone to an answered caller (Busy, Congestion).
    pub(super) fn inband_tone(&self, call: &Call, tone: media::tones::Tone) {
        let Some(cadence) = media::tones::tone(&self.svc.config().media.tones, tone) else {
            return;
        };
        let payload_type = caller_playback(call);
        if let Some(relay) = &call.relay {
            relay.play(
                RelaySide::A,
                cadence.encode(payload_type).into(),
                payload_type,
                true,
            );
        }
    }
}

/// The G.711 law the mixer and recorder speak with this caller: the first of
/// PCMU/PCMA it offered.
pub(super) fn caller_g711(call: &Call) -> u8 {
    first_offered(call, &[PCMU, PCMA]).unwrap_or(PCMU)
}

/// What prompts and tones are played in: the first of PCMU, PCMA and G.722 the
/// caller offered, so a wideband-only phone hears them too.
pub(super) fn caller_playback(call: &Call) -> u8 {
    first_offered(call, &[PCMU, PCMA, G722]).unwrap_or(PCMU)
}

fn first_offered(call: &Call, wanted: &[u8]) -> Option<u8> {
    call.offer.as_ref().and_then(|sdp| {
        sdp.media()
            .into_iter()
            .find(|m| m.kind == "audio" && m.port != 0)
            .and_then(|m| {
                m.formats
                    .iter()
                    .filter_map(|f| f.parse::<u8>().ok())
                    .find(|pt| wanted.contains(pt))
            })
    })
}

/// `SayNumber(n)` in English as the prompts that say it: "digits/2"
/// "digits/hundred" "digits/40" "digits/2" for 242, down to "digits/0" for zero;
/// "digits/minus" first for a negative number.
pub(super) fn number_prompts(number: &str) -> Option<Vec<String>> {
    let n: i64 = number.trim().parse().ok()?;
    let mut files = Vec::new();
    if n < 0 {
        files.push("digits/minus".to_string());
    }
    let n = n.unsigned_abs();
    if n == 0 {
        files.push("digits/0".into());
        return Some(files);
    }
    say_below_billion(n, &mut files);
    Some(files)
}

fn say_below_billion(n: u64, files: &mut Vec<String>) {
    for (unit, name) in [
        (1_000_000_000u64, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ] {
        if n >= unit {
            say_below_billion(n / unit, files);
            files.push(format!("digits/{name}"));
            return say_below_billion(n % unit, files);
        }
    }
    if n >= 100 {
        files.push(format!("digits/{}", n / 100));
        files.push("digits/hundred".into());
    }
    match n % 100 {
        0 => {}
        r @ 1..=19 => files.push(format!("digits/{r}")),
        r => {
            files.push(format!("digits/{}", r / 10 * 10));
            if r % 10 != 0 {
                files.push(format!("digits/{}", r % 10));
            }
        }
    }
}

#[cfg(test)]
mod number_tests {
    use super::number_prompts;

    fn said(n: &str) -> String {
        number_prompts(n)
            .unwrap()
            .iter()
            .map(|f| f.trim_start_matches("digits/").to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn numbers_are_said_in_english() {
        assert_eq!(said("0"), "0");
        assert_eq!(said("7"), "7");
        assert_eq!(said("13"), "13");
        assert_eq!(said("40"), "40");
        assert_eq!(said("42"), "40 2");
        assert_eq!(said("100"), "1 hundred");
        assert_eq!(said("242"), "2 hundred 40 2");
        assert_eq!(said("1005"), "1 thousand 5");
        assert_eq!(said("12345"), "12 thousand 3 hundred 40 5");
        assert_eq!(said("2000000"), "2 million");
        assert_eq!(said("-3"), "minus 3");
        assert_eq!(number_prompts("12a"), None);
    }
}
