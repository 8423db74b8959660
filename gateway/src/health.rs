//! Dial-peer health: whether a peer takes new calls, from what its live calls
//! and its OPTIONS probes say.
//!
//! ```text
//!  UP ──failure──▶ SUSPECT ──failures × fall──▶ DOWN ──probe ok──▶ RECOVERING ──ok × rise──▶ UP
//!  (503 + Retry-After, from a probe or a call) ──▶ DRAINING until it passes ──▶ UP
//!  (operator) ──▶ DISABLED / DRAINING until the operator says otherwise
//! ```
//!
//! A failure seen on a live call moves an up peer to SUSPECT and asks for a
//! probe at once, so a dead peer is found in one probe timeout instead of a
//! keepalive interval. SUSPECT still takes calls; DOWN, RECOVERING, DRAINING
//! and DISABLED do not.
//!
//! Sans-IO: the owner feeds evidence and the current instant in, sends the
//! probes [`Health::poll`] asks for, and logs the [`Transition`]s it gets back.

use std::fmt;
use std::time::{Duration, Instant};

/// Where a peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Up,
    /// A failure was seen and is being confirmed; calls still go there.
    Suspect,
    Down,
    /// Answering probes again, not yet `rise` times in a row.
    Recovering,
    /// Refused calls with 503 + Retry-After, or drained by the operator.
    Draining,
    /// Taken out by the operator: no calls, no probes.
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Suspect => "suspect",
            State::Down => "down",
            State::Recovering => "recovering",
            State::Draining => "draining",
            State::Disabled => "disabled",
        }
    }

    pub fn takes_calls(self) -> bool {
        matches!(self, State::Up | State::Suspect)
    }

    pub const ALL: [State; 6] = [
        State::Up,
        State::Suspect,
        State::Down,
        State::Recovering,
        State::Draining,
        State::Disabled,
    ];
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OPTIONS keepalive settings of one peer (`options_keepalive = { … }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keepalive {
    /// Without probes a down peer is retried after `down_interval` instead.
    pub enabled: bool,
    /// Between probes while the peer is up.
    pub interval: Duration,
    /// Between probes while it is down.
    pub down_interval: Duration,
    /// How long a probe may go unanswered.
    pub timeout: Duration,
    /// Failures in a row that take a suspect peer down.
    pub fall: u32,
    /// Answers in a row that bring a down peer back up.
    pub rise: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            enabled: true,
            interval: Duration::from_secs(1),
            down_interval: Duration::from_secs(1),
            timeout: Duration::from_millis(400),
            fall: 2,
            rise: 2,
        }
    }
}

/// What a probe or a live call said about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// It answered (any response but the failure codes below).
    Alive,
    /// No response in time, a transport error, 408, 500, 502, 503 without
    /// Retry-After or 504; the text says which.
    Failed(String),
    /// 503 with Retry-After: no new calls for that long.
    Refused { retry_after: Duration },
    /// A live call has waited unusually long for any answer: enough to
    /// suspect an up peer and probe it, not a failure that counts toward down.
    Slow(String),
}

impl Evidence {
    /// What a final response to an OPTIONS probe or an INVITE says about the
    /// route. 404, 405, 481, 501 and the like prove the peer is alive; only
    /// the codes of an overloaded or unreachable peer count against it.
    /// The same from the response's `Retry-After` header as written
    /// (`120`, `120;duration=60`, or absent).
    pub fn from_response(status: u16, retry_after: Option<&str>) -> Evidence {
        let delay = retry_after
            .and_then(|v| v.split(';').next()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Evidence::from_status(status, delay)
    }

    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Evidence {
        match (status, retry_after) {
            (503, Some(d)) if !d.is_zero() => Evidence::Refused { retry_after: d },
            (408 | 500 | 502 | 503 | 504, _) => Evidence::Failed(format!("{status} response")),
            _ => Evidence::Alive,
        }
    }
}

/// One state change, for the log, the counters and the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// A probe [`Health::poll`] wants sent; its answer comes back with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeId(pub u64);

/// The health of one peer.
#[derive(Debug, Clone)]
pub struct Health {
    keepalive: Keepalive,
    state: State,
    since: Instant,
    reason: String,
    /// Failures (in SUSPECT/DOWN) or answers (in RECOVERING) in a row.
    streak: u32,
    next_probe: Option<Instant>,
    in_flight: Option<(ProbeId, Instant)>,
    probes_sent: u64,
    /// When a Retry-After drain ends; `None` in DRAINING means the operator's.
    drain_until: Option<Instant>,
    changes: u64,
}

impl Health {
    /// A new peer starts up — one missing answer must never take out a peer
    /// that was never tried. `stagger` delays its first probe so that many
    /// peers are not probed in the same instant.
    pub fn new(keepalive: Keepalive, now: Instant, stagger: Duration) -> Health {
        Health {
            keepalive,
            state: State::Up,
            since: now,
            reason: "configured".into(),
            streak: 0,
            next_probe: keepalive.enabled.then_some(now + stagger),
            in_flight: None,
            probes_sent: 0,
            drain_until: None,
            changes: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn since(&self) -> Instant {
        self.since
    }

    /// Why the peer is in its state.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn takes_calls(&self) -> bool {
        self.state.takes_calls()
    }

    pub fn keepalive(&self) -> Keepalive {
        self.keepalive
    }

    /// State changes so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn probes_sent(&self) -> u64 {
        self.probes_sent
    }

    /// The earliest instant [`Health::poll`] has something to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let deadline = self.in_flight.map(|(_, d)| d);
        let retry = match (self.state, self.keepalive.enabled) {
            (State::Down, false) => Some(self.since + self.keepalive.down_interval),
            _ => None,
        };
        [deadline, self.next_probe, self.drain_until, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers: a probe past its timeout counts as a failure, a drain
    /// that ran out ends. Returns the change that made, and a probe to send now.
    pub fn poll(&mut self, now: Instant) -> (Option<Transition>, Option<ProbeId>) {
        let mut change = None;
        if let Some((_, deadline)) = self.in_flight
            && now >= deadline
        {
            self.in_flight = None;
            change = self.fail("probe timed out".into(), now, false);
        }
        if self.state == State::Draining
            && let Some(until) = self.drain_until
            && now >= until
        {
            self.drain_until = None;
            change = self.enter(State::Up, "Retry-After passed".into(), now);
            self.probe_soon(now);
        }
        if self.state == State::Down
            && !self.keepalive.enabled
            && now >= self.since + self.keepalive.down_interval
        {
            // Nothing will ever probe it: give it calls again and let them judge.
            change = self.enter(State::Up, "retried after down_interval".into(), now);
        }
        let mut probe = None;
        if self.in_flight.is_none()
            && let Some(at) = self.next_probe
            && now >= at
        {
            self.next_probe = None;
            self.probes_sent += 1;
            let id = ProbeId(self.probes_sent);
            self.in_flight = Some((id, now + self.keepalive.timeout));
            probe = Some(id);
        }
        (change, probe)
    }

    /// The answer to probe `id` (stale ids are ignored: their probe already
    /// timed out and counted).
    pub fn on_probe(
        &mut self,
        id: ProbeId,
        evidence: Evidence,
        now: Instant,
    ) -> Option<Transition> {
        match self.in_flight {
            Some((current, _)) if current == id => self.in_flight = None,
            _ => return None,
        }
        match evidence {
            Evidence::Alive => self.alive("answered OPTIONS", now),
            Evidence::Failed(why) | Evidence::Slow(why) => {
                self.fail(format!("OPTIONS: {why}"), now, false)
            }
            Evidence::Refused { retry_after } => self.refused(retry_after, "OPTIONS", now),
        }
    }

    /// What a live call's INVITE got from the peer.
    pub fn on_call(&mut self, evidence: Evidence, now: Instant) -> Option<Transition> {
        match evidence {
            // A call that got through says nothing new to an up peer, and is
            // as good as an answered probe for one being confirmed.
            Evidence::Alive => match self.state {
                State::Suspect => self.alive("a call got through", now),
                _ => None,
            },
            Evidence::Failed(why) => self.fail(format!("call: {why}"), now, true),
            Evidence::Slow(why) if self.state == State::Up => {
                self.fail(format!("call: {why}"), now, true)
            }
            Evidence::Slow(_) => None,
            Evidence::Refused { retry_after } => self.refused(retry_after, "a call", now),
        }
    }

    /// The operator takes the peer out of service: no calls and no probes.
    pub fn disable(&mut self, now: Instant) -> Option<Transition> {
        self.in_flight = None;
        self.next_probe = None;
        self.drain_until = None;
        self.enter(State::Disabled, "disabled by the operator".into(), now)
    }

    /// The operator lets calls in progress finish but sends no new ones.
    pub fn drain(&mut self, now: Instant) -> Option<Transition> {
        self.in_flight = None;
        self.next_probe = None;
        self.drain_until = None;
        self.enter(State::Draining, "drained by the operator".into(), now)
    }

    /// Back in service after [`Health::disable`] or [`Health::drain`]: up, and
    /// probed at once so a peer that died meanwhile is found quickly.
    pub fn enable(&mut self, now: Instant) -> Option<Transition> {
        if !matches!(self.state, State::Disabled | State::Draining) {
            return None;
        }
        self.drain_until = None;
        self.streak = 0;
        self.probe_soon(now);
        self.enter(State::Up, "enabled by the operator".into(), now)
    }

    /// True when the operator's hand holds the peer where it is.
    pub fn operator_hold(&self) -> bool {
        self.state == State::Disabled
            || (self.state == State::Draining && self.drain_until.is_none())
    }

    fn alive(&mut self, why: &str, now: Instant) -> Option<Transition> {
        match self.state {
            State::Up => {
                self.schedule(now + self.keepalive.interval);
                None
            }
            State::Suspect => {
                self.schedule(now + self.keepalive.interval);
                self.enter(State::Up, why.into(), now)
            }
            State::Down | State::Recovering => {
                self.streak = if self.state == State::Down {
                    1
                } else {
                    self.streak + 1
                };
                if self.streak >= self.keepalive.rise.max(1) {
                    self.schedule(now + self.keepalive.interval);
                    self.enter(
                        State::Up,
                        format!("{why} {} times in a row", self.streak),
                        now,
                    )
                } else {
                    // Confirm soon rather than after a full down interval.
                    self.schedule(now + self.keepalive.interval.min(self.keepalive.down_interval));
                    let streak = self.streak;
                    let t = self.enter(State::Recovering, why.into(), now);
                    self.streak = streak;
                    t
                }
            }
            // A drained peer says nothing we act on until its time is up.
            State::Draining | State::Disabled => None,
        }
    }

    fn fail(&mut self, why: String, now: Instant, from_call: bool) -> Option<Transition> {
        match self.state {
            State::Up => {
                self.streak = 1;
                if self.keepalive.fall <= 1 {
                    self.after_down(now);
                    return self.enter(State::Down, why, now);
                }
                // Confirm at once: probes are what turn suspicion into DOWN.
                self.probe_soon(now);
                let t = self.enter(State::Suspect, why, now);
                self.streak = 1;
                t
            }
            State::Suspect => {
                self.streak += 1;
                if self.streak >= self.keepalive.fall {
                    self.after_down(now);
                    self.enter(
                        State::Down,
                        format!("{why} ({} failures in a row)", self.streak),
                        now,
                    )
                } else {
                    if !from_call || self.in_flight.is_none() {
                        self.probe_soon(now);
                    }
                    None
                }
            }
            State::Recovering => {
                self.after_down(now);
                self.enter(State::Down, why, now)
            }
            State::Down => {
                self.after_down(now);
                None
            }
            State::Draining | State::Disabled => None,
        }
    }

    fn refused(&mut self, retry_after: Duration, from: &str, now: Instant) -> Option<Transition> {
        if self.operator_hold() {
            return None;
        }
        let until = now + retry_after;
        self.in_flight = None;
        self.next_probe = None;
        self.drain_until = Some(self.drain_until.map_or(until, |u| u.max(until)));
        self.enter(
            State::Draining,
            format!("{from} got 503 with Retry-After {}s", retry_after.as_secs()),
            now,
        )
    }

    fn after_down(&mut self, now: Instant) {
        if self.keepalive.enabled {
            self.schedule(now + self.keepalive.down_interval);
        }
    }

    fn probe_soon(&mut self, now: Instant) {
        if self.keepalive.enabled {
            self.next_probe = Some(now);
        }
    }

    fn schedule(&mut self, at: Instant) {
        if self.keepalive.enabled {
            self.next_probe = Some(at);
        }
    }

    fn enter(&mut self, to: State, reason: String, now: Instant) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let from = self.state;
        self.state = to;
        self.since = now;
        self.reason = reason.clone();
        self.streak = 0;
        self.changes += 1;
        Some(Transition { from, to, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Drives one peer on a simulated clock.
    struct Sim {
        h: Health,
        now: Instant,
        changes: Vec<(State, State)>,
    }

    impl Sim {
        fn new(k: Keepalive) -> Sim {
            let now = Instant::now();
            Sim {
                h: Health::new(k, now, Duration::ZERO),
                now,
                changes: Vec::new(),
            }
        }

        fn note(&mut self, t: Option<Transition>) {
            if let Some(t) = t {
                self.changes.push((t.from, t.to));
            }
        }

        /// Advances by `d`, returning the probes asked for on the way (10 ms steps).
        fn run(&mut self, d: Duration) -> Vec<ProbeId> {
            let end = self.now + d;
            let mut probes = Vec::new();
            while self.now < end {
                let (t, p) = self.h.poll(self.now);
                self.note(t);
                probes.extend(p);
                self.now += 10 * MS;
            }
            probes
        }

        fn probe_answer(&mut self, id: ProbeId, ev: Evidence) {
            let t = self.h.on_probe(id, ev, self.now);
            self.note(t);
        }

        fn call(&mut self, ev: Evidence) {
            let t = self.h.on_call(ev, self.now);
            self.note(t);
        }
    }

    #[test]
    fn an_answering_peer_is_probed_every_interval_and_stays_up() {
        let mut s = Sim::new(Keepalive::default());
        // Answered 10 ms after each is sent.
        let end = s.now + Duration::from_millis(2995);
        while s.now < end {
            for p in s.run(Duration::from_millis(10)) {
                s.probe_answer(p, Evidence::Alive);
            }
        }
        assert_eq!(s.h.probes_sent(), 3, "at 0, 1.01 and 2.02 s");
        assert_eq!(s.h.state(), State::Up);
        assert!(s.changes.is_empty());
    }

    #[test]
    fn a_failed_call_makes_the_peer_suspect_and_probes_it_at_once() {
        let mut s = Sim::new(Keepalive::default());
        let first = s.run(Duration::from_millis(20));
        s.probe_answer(first[0], Evidence::Alive);
        s.run(Duration::from_millis(300));
        s.call(Evidence::Failed("no response".into()));
        assert_eq!(s.h.state(), State::Suspect);
        assert!(s.h.takes_calls(), "suspect peers still get calls");
        // The probe goes out on the next poll, not a second later.
        let probes = s.run(Duration::from_millis(10));
        assert_eq!(probes.len(), 1);
        // It times out after 400 ms: the second failure in a row takes the peer down.
        s.run(Duration::from_millis(400));
        assert_eq!(s.h.state(), State::Down);
        assert!(!s.h.takes_calls());
        assert_eq!(
            s.changes,
            vec![(State::Up, State::Suspect), (State::Suspect, State::Down)]
        );
    }

    #[test]
    fn a_slow_call_only_raises_suspicion() {
        let mut s = Sim::new(Keepalive::default());
        s.call(Evidence::Slow("no 100 yet".into()));
        assert_eq!(s.h.state(), State::Suspect);
        s.call(Evidence::Slow("no 100 yet".into()));
        assert_eq!(
            s.h.state(),
            State::Suspect,
            "slowness alone never takes it down"
        );
        // The probe it triggered times out: down.
        assert_eq!(s.run(Duration::from_millis(10)).len(), 1);
        s.run(Duration::from_millis(400));
        assert_eq!(s.h.state(), State::Down);
    }

    #[test]
    fn a_suspect_peer_that_answers_is_up_again() {
        let mut s = Sim::new(Keepalive::default());
        s.call(Evidence::Failed("500 response".into()));
        let probes = s.run(Duration::from_millis(10));
        s.probe_answer(probes[0], Evidence::Alive);
        assert_eq!(s.h.state(), State::Up);
    }

    #[test]
    fn a_down_peer_comes_back_after_rise_answers() {
        let mut s = Sim::new(Keepalive::default());
        s.call(Evidence::Failed("no response".into()));
        s.call(Evidence::Failed("no response".into()));
        assert_eq!(s.h.state(), State::Down);
        // Down: probed every down_interval; a dead peer stays down.
        let probes = s.run(Duration::from_millis(1500));
        assert_eq!(probes.len(), 1, "{probes:?}");
        assert_eq!(s.h.state(), State::Down);
        let probes = s.run(Duration::from_millis(1000));
        s.probe_answer(probes[0], Evidence::Alive);
        assert_eq!(s.h.state(), State::Recovering);
        assert!(!s.h.takes_calls(), "one answer is not enough");
        let probes = s.run(Duration::from_millis(1010));
        s.probe_answer(probes[0], Evidence::Alive);
        assert_eq!(s.h.state(), State::Up);
        assert_eq!(
            s.changes,
            vec![
                (State::Up, State::Suspect),
                (State::Suspect, State::Down),
                (State::Down, State::Recovering),
                (State::Recovering, State::Up),
            ]
        );
    }

    #[test]
    fn a_failure_while_recovering_goes_back_down() {
        let mut s = Sim::new(Keepalive::default());
        s.call(Evidence::Failed("x".into()));
        s.call(Evidence::Failed("x".into()));
        let p = s.run(Duration::from_millis(1010));
        s.probe_answer(p[0], Evidence::Alive);
        assert_eq!(s.h.state(), State::Recovering);
        let p = s.run(Duration::from_millis(1010));
        s.probe_answer(p[0], Evidence::Failed("504 response".into()));
        assert_eq!(s.h.state(), State::Down);
    }

    #[test]
    fn retry_after_drains_the_peer_for_that_long() {
        let mut s = Sim::new(Keepalive::default());
        s.call(Evidence::Refused {
            retry_after: Duration::from_secs(5),
        });
        assert_eq!(s.h.state(), State::Draining);
        assert!(!s.h.takes_calls());
        assert!(
            s.run(Duration::from_millis(4900)).is_empty(),
            "no probes while draining"
        );
        assert_eq!(s.h.state(), State::Draining);
        let p = s.run(Duration::from_millis(200));
        assert_eq!(s.h.state(), State::Up);
        assert_eq!(p.len(), 1, "probed as soon as the drain ends");
    }

    #[test]
    fn a_probe_answered_with_503_retry_after_drains_too() {
        let mut s = Sim::new(Keepalive::default());
        let p = s.run(Duration::from_millis(10));
        s.probe_answer(
            p[0],
            Evidence::from_status(503, Some(Duration::from_secs(2))),
        );
        assert_eq!(s.h.state(), State::Draining);
    }

    #[test]
    fn operator_disable_stops_probes_and_enable_probes_at_once() {
        let mut s = Sim::new(Keepalive::default());
        let now = s.now;
        let t = s.h.disable(now);
        s.note(t);
        assert_eq!(s.h.state(), State::Disabled);
        assert!(s.h.operator_hold());
        assert!(s.run(Duration::from_secs(5)).is_empty());
        // Failures and refusals do not move a disabled peer.
        s.call(Evidence::Failed("x".into()));
        s.call(Evidence::Refused {
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(s.h.state(), State::Disabled);
        let now = s.now;
        let t = s.h.enable(now);
        s.note(t);
        assert_eq!(s.h.state(), State::Up);
        assert_eq!(s.run(Duration::from_millis(10)).len(), 1);
    }

    #[test]
    fn operator_drain_lasts_until_enabled() {
        let mut s = Sim::new(Keepalive::default());
        let now = s.now;
        let t = s.h.drain(now);
        s.note(t);
        s.run(Duration::from_secs(60));
        assert_eq!(s.h.state(), State::Draining);
        assert!(s.h.operator_hold());
        let now = s.now;
        let t = s.h.enable(now);
        s.note(t);
        assert_eq!(s.h.state(), State::Up);
    }

    #[test]
    fn a_late_probe_answer_is_ignored() {
        let mut s = Sim::new(Keepalive::default());
        let p = s.run(Duration::from_millis(10));
        s.run(Duration::from_millis(500)); // timed out: suspect, re-probed
        assert_eq!(s.h.state(), State::Suspect);
        s.probe_answer(p[0], Evidence::Alive);
        assert_eq!(
            s.h.state(),
            State::Suspect,
            "the stale answer changes nothing"
        );
    }

    #[test]
    fn without_keepalive_a_down_peer_is_retried_after_down_interval() {
        let mut s = Sim::new(Keepalive {
            enabled: false,
            down_interval: Duration::from_secs(3),
            ..Keepalive::default()
        });
        assert!(s.run(Duration::from_secs(2)).is_empty());
        s.call(Evidence::Failed("x".into()));
        s.call(Evidence::Failed("x".into()));
        assert_eq!(s.h.state(), State::Down);
        assert!(s.run(Duration::from_millis(2900)).is_empty());
        assert_eq!(s.h.state(), State::Down);
        s.run(Duration::from_millis(200));
        assert_eq!(s.h.state(), State::Up);
        assert_eq!(s.h.probes_sent(), 0);
    }

    #[test]
    fn probe_answers_other_than_overload_codes_prove_the_peer_alive() {
        for code in [200, 404, 405, 481, 501, 486] {
            assert_eq!(Evidence::from_status(code, None), Evidence::Alive, "{code}");
        }
        for code in [408, 500, 502, 503, 504] {
            assert!(
                matches!(Evidence::from_status(code, None), Evidence::Failed(_)),
                "{code}"
            );
        }
        assert!(matches!(
            Evidence::from_status(503, Some(Duration::ZERO)),
            Evidence::Failed(_)
        ));
        assert_eq!(
            Evidence::from_response(503, Some(" 30;duration=10")),
            Evidence::Refused {
                retry_after: Duration::from_secs(30)
            }
        );
        assert!(matches!(
            Evidence::from_response(503, Some("soon")),
            Evidence::Failed(_)
        ));
    }

    #[test]
    fn next_wakeup_names_the_earliest_timer() {
        let mut s = Sim::new(Keepalive::default());
        assert_eq!(s.h.next_wakeup(), Some(s.now));
        s.run(Duration::from_millis(10));
        // A probe in flight: its deadline.
        let sent = s.now - 10 * MS;
        assert_eq!(s.h.next_wakeup(), Some(sent + Duration::from_millis(400)));
    }
}
