//! Call-progress tones (ringback, busy, congestion) per regional tone plan, as one
//! cadence of 8 kHz samples that the player loops.
//!
//! Frequencies and cadences are those of ITU-T E.180 and the national plans it
//! lists: `us` (North America), `itu` (the CEPT 425 Hz plan most of Europe uses),
//! `uk`.

use crate::prompt::{Prompt, RATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ringback,
    Busy,
    Congestion,
}

/// (frequencies, [on ms, off ms, on ms, off ms, ...]) of a tone in a plan.
fn cadence(plan: &str, tone: Tone) -> Option<(&'static [f64], &'static [u32])> {
    Some(match (plan, tone) {
        ("us", Tone::Ringback) => (&[440.0, 480.0], &[2000, 4000]),
        ("us", Tone::Busy) => (&[480.0, 620.0], &[500, 500]),
        ("us", Tone::Congestion) => (&[480.0, 620.0], &[250, 250]),
        ("itu", Tone::Ringback) => (&[425.0], &[1000, 4000]),
        ("itu", Tone::Busy) => (&[425.0], &[500, 500]),
        ("itu", Tone::Congestion) => (&[425.0], &[250, 250]),
        ("uk", Tone::Ringback) => (&[400.0, 450.0], &[400, 200, 400, 2000]),
        ("uk", Tone::Busy) => (&[400.0], &[375, 375]),
        ("uk", Tone::Congestion) => (&[400.0], &[400, 350, 225, 525]),
        _ => return None,
    })
}

/// The tone plans [`tone`] knows.
pub const PLANS: [&str; 3] = ["us", "itu", "uk"];

/// One cadence of `tone` in `plan`, to be played in a loop; None for an unknown plan.
pub fn tone(plan: &str, tone: Tone) -> Option<Prompt> {
    let (freqs, steps) = cadence(plan, tone)?;
    // -13 dBm0-ish per component: well below clipping when two are summed.
    let amplitude = 6000.0 / freqs.len() as f64;
    let mut samples = Vec::new();
    for (i, ms) in steps.iter().enumerate() {
        let n = (RATE * ms / 1000) as usize;
        let on = i % 2 == 0;
        samples.extend((0..n).map(|k| {
            if !on {
                return 0;
            }
            let t = (samples_offset(steps, i) + k) as f64 / f64::from(RATE);
            let v: f64 = freqs
                .iter()
                .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            (amplitude * v) as i16
        }));
    }
    Some(Prompt::from_samples(samples))
}

/// The beep that tells a caller to speak (Record, VoiceMail): 1 kHz for a quarter
/// of a second.
pub fn beep() -> Prompt {
    let n = RATE as usize / 4;
    Prompt::from_samples(
        (0..n)
            .map(|k| {
                let t = k as f64 / f64::from(RATE);
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
            })
            .collect(),
    )
}

/// DTMF keys as in-band tones (ITU-T Q.23 pairs), each held `on_ms` and followed
/// by `off_ms` of silence, for phones that did not negotiate telephone-event.
pub fn dtmf(keys: &str, on_ms: u32, off_ms: u32) -> Prompt {
    let mut samples = Vec::new();
    for key in keys.chars() {
        let (low, high) = match key.to_ascii_uppercase() {
            '1' => (697.0, 1209.0),
            '2' => (697.0, 1336.0),
            '3' => (697.0, 1477.0),
            'A' => (697.0, 1633.0),
            '4' => (770.0, 1209.0),
            '5' => (770.0, 1336.0),
            '6' => (770.0, 1477.0),
            'B' => (770.0, 1633.0),
            '7' => (852.0, 1209.0),
            '8' => (852.0, 1336.0),
            '9' => (852.0, 1477.0),
            'C' => (852.0, 1633.0),
            '*' => (941.0, 1209.0),
            '0' => (941.0, 1336.0),
            '#' => (941.0, 1477.0),
            'D' => (941.0, 1633.0),
            _ => continue,
        };
        let on = (RATE * on_ms / 1000) as usize;
        samples.extend((0..on).map(|k| {
            let t = k as f64 / f64::from(RATE);
            let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
            (5000.0 * (w(low) + w(high))) as i16
        }));
        samples.extend(std::iter::repeat_n(0i16, (RATE * off_ms / 1000) as usize));
    }
    Prompt::from_samples(samples)
}

/// Someone joined a conference: two short rising tones.
pub fn join_tone() -> Prompt {
    two_tones(600.0, 900.0)
}

/// Someone left a conference: two short falling tones.
pub fn leave_tone() -> Prompt {
    two_tones(900.0, 600.0)
}

fn two_tones(first: f64, second: f64) -> Prompt {
    let n = RATE as usize / 10;
    let samples = [first, second]
        .iter()
        .flat_map(|f| {
            (0..n).map(move |k| {
                let t = k as f64 / f64::from(RATE);
                (4000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
            })
        })
        .collect();
    Prompt::from_samples(samples)
}

fn samples_offset(steps: &[u32], upto: usize) -> usize {
    steps[..upto]
        .iter()
        .map(|ms| (RATE * ms / 1000) as usize)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Energy at `freq` over `samples` relative to their total energy (Goertzel).
    fn share(samples: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
        let (mut s1, mut s2) = (0.0, 0.0);
        let mut total = 0.0;
        for &x in samples {
            let x = f64::from(x);
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
            total += x * x;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        power / (total * samples.len() as f64 / 2.0)
    }

    #[test]
    fn cadences_have_the_plans_lengths_and_frequencies() {
        let us = tone("us", Tone::Ringback).unwrap();
        assert_eq!(us.samples().len(), 6 * 8000);
        let on = &us.samples()[..16000];
        assert!(share(on, 440.0) > 0.3 && share(on, 480.0) > 0.3);
        assert!(
            us.samples()[16000..].iter().all(|&s| s == 0),
            "4 s of silence"
        );
        let itu = tone("itu", Tone::Busy).unwrap();
        assert_eq!(itu.samples().len(), 8000);
        assert!(share(&itu.samples()[..4000], 425.0) > 0.8);
        assert_eq!(
            tone("uk", Tone::Congestion).unwrap().samples().len(),
            12_000
        );
        assert!(tone("mars", Tone::Busy).is_none());
        for plan in PLANS {
            for t in [Tone::Ringback, Tone::Busy, Tone::Congestion] {
                assert!(tone(plan, t).is_some(), "{plan} {t:?}");
            }
        }
    }
}
