//! What `/metrics` exposes, in the Prometheus text format. Counters move where the
//! thing happens (a SIP message in or out, a call's record, a failed login); the
//! gauges that describe a state (registrations, calls up, peer health) are read
//! from the node when a scrape comes in. A call's media counts and quality are
//! added when it ends, from the numbers its CDR carries.
//!
//! One set per process, like the default registry of other Prometheus clients:
//! the counting sites are spread over the SIP core, the registrar and the call
//! agent, and none of them should need a handle passed down to count.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::cdr::Cdr;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub direction: &'static str,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    pub direction: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DispositionLabels {
    pub disposition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LegLabels {
    pub leg: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub tag: u32,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    pub sip_requests: Family<RequestLabels, Counter>,
    pub sip_responses: Family<ResponseLabels, Counter>,
    pub calls: Family<DispositionLabels, Counter>,
    pub call_setup: Histogram,
    pub post_dial_delay: Histogram,
    pub mos: Histogram,
    pub rtp_packets: Family<LegLabels, Counter>,
    pub rtp_bytes: Family<LegLabels, Counter>,
    pub rtp_lost: Family<LegLabels, Counter>,
    pub auth_failures: Counter,
    pub bans: Counter,
    pub dialplan_reloads: Family<ResultLabels, Counter>,
    // Read from the node at each scrape.
    pub registrations: Gauge,
    pub calls_active: Gauge,
    pub transactions: Gauge,
    pub tcp_connections: Gauge,
    pub draining: Gauge,
    pub peer_up: Family<PeerLabels, Gauge>,
    pub nodes: Family<StateLabels, Gauge>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let seconds = || Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let m = Metrics {
            registry: Registry::with_prefix("softswitch"),
            sip_requests: Family::default(),
            sip_responses: Family::default(),
            calls: Family::default(),
            call_setup: seconds(),
            post_dial_delay: seconds(),
            // The ITU-T G.107 ranges: 4.3 and up is what G.711 gives on a clean
            // network; under 3.6 many users are dissatisfied.
            mos: Histogram::new([1.0, 2.0, 2.6, 3.1, 3.6, 4.0, 4.3, 4.4, 4.5]),
            rtp_packets: Family::default(),
            rtp_bytes: Family::default(),
            rtp_lost: Family::default(),
            auth_failures: Counter::default(),
            bans: Counter::default(),
            dialplan_reloads: Family::default(),
            registrations: Gauge::default(),
            calls_active: Gauge::default(),
            transactions: Gauge::default(),
            tcp_connections: Gauge::default(),
            draining: Gauge::default(),
            peer_up: Family::default(),
            nodes: Family::default(),
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register(
            "sip_requests",
            "SIP requests received and sent, by method",
            m.sip_requests.clone(),
        );
        r.register(
            "sip_responses",
            "SIP responses received and sent, by status code",
            m.sip_responses.clone(),
        );
        r.register("calls", "Calls ended, by CDR disposition", m.calls.clone());
        r.register(
            "call_setup_seconds",
            "From a call's INVITE to its answer, for answered calls",
            m.call_setup.clone(),
        );
        r.register(
            "post_dial_delay_seconds",
            "From a call's INVITE to the first ringing or progress sent to the caller",
            m.post_dial_delay.clone(),
        );
        r.register(
            "call_mos",
            "Estimated MOS (E-model) of each leg of ended calls that carried audio",
            m.mos.clone(),
        );
        r.register(
            "rtp_packets",
            "RTP packets relayed from each leg's phone, counted when the call ends",
            m.rtp_packets.clone(),
        );
        r.register(
            "rtp_bytes",
            "RTP bytes relayed from each leg's phone, counted when the call ends",
            m.rtp_bytes.clone(),
        );
        r.register(
            "rtp_lost_packets",
            "RTP packets missing from each leg's sequence numbers, counted when the call ends",
            m.rtp_lost.clone(),
        );
        r.register(
            "auth_failures",
            "Failed digest authentications (REGISTER, INVITE, SUBSCRIBE)",
            m.auth_failures.clone(),
        );
        r.register(
            "bans",
            "Source addresses banned for repeated failed logins",
            m.bans.clone(),
        );
        r.register(
            "dialplan_reloads",
            "Dialplan reloads, by result (a failed one leaves the running plan)",
            m.dialplan_reloads.clone(),
        );
        r.register(
            "registrations",
            "Current bindings (registered contacts)",
            m.registrations.clone(),
        );
        r.register(
            "calls_active",
            "Calls in progress on this node",
            m.calls_active.clone(),
        );
        r.register(
            "sip_transactions",
            "SIP transactions in progress",
            m.transactions.clone(),
        );
        r.register(
            "tcp_connections",
            "Open SIP TCP connections",
            m.tcp_connections.clone(),
        );
        r.register(
            "draining",
            "1 while this node refuses new calls (softswitch drain)",
            m.draining.clone(),
        );
        r.register(
            "peer_up",
            "1 when a dial peer takes calls (up or suspect), 0 otherwise",
            m.peer_up.clone(),
        );
        r.register(
            "cluster_nodes",
            "Nodes sharing this node's database, by state",
            m.nodes.clone(),
        );
        m.start_at_zero();
        m
    }

    /// The series every switch has, at 0 from the start: a rate over a series
    /// that appears only with its first event misses that event.
    fn start_at_zero(&self) {
        for direction in ["received", "sent"] {
            for method in KNOWN_METHODS {
                let _ = self
                    .sip_requests
                    .get_or_create(&RequestLabels { direction, method });
            }
            for code in [100, 180, 183, 200, 401, 407, 404, 486, 487, 503] {
                let _ = self
                    .sip_responses
                    .get_or_create(&ResponseLabels { direction, code });
            }
        }
        for disposition in ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"] {
            let _ = self.calls.get_or_create(&DispositionLabels {
                disposition: disposition.into(),
            });
        }
        for leg in ["caller", "callee"] {
            let labels = LegLabels { leg };
            let _ = self.rtp_packets.get_or_create(&labels);
            let _ = self.rtp_bytes.get_or_create(&labels);
            let _ = self.rtp_lost.get_or_create(&labels);
        }
        for result in ["ok", "failed"] {
            let _ = self
                .dialplan_reloads
                .get_or_create(&ResultLabels { result });
        }
    }

    /// The text a scrape gets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A SIP message in (`received`) or out (`sent`), from its first line.
    pub fn sip_message(&self, direction: &'static str, bytes: &[u8]) {
        if let Some(code) = bytes.strip_prefix(b"SIP/2.0 ").and_then(|rest| {
            std::str::from_utf8(rest.get(..3)?)
                .ok()?
                .parse::<u16>()
                .ok()
        }) {
            self.sip_responses
                .get_or_create(&ResponseLabels { direction, code })
                .inc();
            return;
        }
        let name = bytes.split(|&b| b == b' ').next().unwrap_or_default();
        self.sip_requests
            .get_or_create(&RequestLabels {
                direction,
                method: method_label(name),
            })
            .inc();
    }

    /// A call ended: its disposition, setup time, post-dial delay and media.
    pub fn call_ended(&self, cdr: &Cdr) {
        self.calls
            .get_or_create(&DispositionLabels {
                disposition: cdr.disposition.clone(),
            })
            .inc();
        // CDR times are Unix milliseconds.
        if let Some(answer) = cdr.answer_at {
            self.call_setup
                .observe((answer - cdr.start_at).max(0) as f64 / 1000.0);
        }
        if let Some(pdd) = cdr.pdd_ms {
            self.post_dial_delay.observe(pdd.max(0) as f64 / 1000.0);
        }
        let Ok(media) = serde_json::from_str::<serde_json::Value>(&cdr.media) else {
            return;
        };
        for leg in ["caller", "callee"] {
            let m = &media[leg];
            let count = |name: &str| m[name].as_u64().unwrap_or(0);
            let labels = LegLabels { leg };
            self.rtp_packets
                .get_or_create(&labels)
                .inc_by(count("packets"));
            self.rtp_bytes.get_or_create(&labels).inc_by(count("bytes"));
            self.rtp_lost.get_or_create(&labels).inc_by(count("lost"));
            if let Some(mos) = m["mos"].as_f64() {
                self.mos.observe(mos);
            }
        }
    }
}

/// The method as a label: the RFC methods by name, anything else as `other` so a
/// sender cannot grow the label set.
fn method_label(name: &[u8]) -> &'static str {
    KNOWN_METHODS
        .into_iter()
        .find(|m| m.as_bytes() == name)
        .unwrap_or("other")
}

const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_counted_by_method_and_code_and_rendered() {
        let m = Metrics::new();
        m.sip_message("received", b"INVITE sip:1002@pbx SIP/2.0\r\n");
        m.sip_message("received", b"INVITE sip:1003@pbx SIP/2.0\r\n");
        m.sip_message("sent", b"SIP/2.0 407 Proxy Authentication Required\r\n");
        m.sip_message("received", b"FOO sip:x SIP/2.0\r\n");
        let text = m.render();
        assert!(
            text.contains(
                r#"softswitch_sip_requests_total{direction="received",method="INVITE"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"softswitch_sip_responses_total{direction="sent",code="407"} 1"#));
        assert!(text.contains(r#"method="other"} 1"#));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_ended_call_moves_calls_setup_media_and_quality() {
        let m = Metrics::new();
        let cdr = Cdr {
            disposition: "ANSWERED".into(),
            start_at: 1_000,
            answer_at: Some(1_250),
            pdd_ms: Some(40),
            media: r#"{"caller":{"packets":100,"bytes":17200,"lost":2,"mos":4.39},
                       "callee":{"packets":98,"bytes":16856,"lost":0,"mos":null}}"#
                .into(),
            ..Cdr::default()
        };
        m.call_ended(&cdr);
        let text = m.render();
        for line in [
            r#"softswitch_calls_total{disposition="ANSWERED"} 1"#,
            "softswitch_call_setup_seconds_sum 0.25",
            "softswitch_call_setup_seconds_count 1",
            "softswitch_post_dial_delay_seconds_count 1",
            r#"softswitch_rtp_packets_total{leg="caller"} 100"#,
            r#"softswitch_rtp_lost_packets_total{leg="caller"} 2"#,
            r#"softswitch_rtp_bytes_total{leg="callee"} 16856"#,
            "softswitch_call_mos_count 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
