//! SDP (RFC 8866, which obsoletes RFC 4566) as a B2BUA that anchors media needs it.
//!
//! The switch never builds an SDP of its own: it forwards the phone's offer or answer
//! with the transport addresses swapped for the relay's. Codecs, fmtp, SRTP keys,
//! bandwidth and any attribute we do not understand must reach the other phone
//! byte for byte, or codec negotiation breaks in ways that are hard to see. So
//! [`Sdp`] keeps every line as it came and only understands the handful of lines
//! that carry addresses (`o=`, `c=`, `m=`, `a=rtcp`) or that would lie once the
//! media is anchored (ICE candidates name the phone, not the relay).
//!
//! Errors are kept for what the relay cannot work around: no `v=`, a structurally
//! broken `o=`, `c=` or `m=` line, or a live stream with no address at all. A
//! malformed attribute (`a=rtpmap`, `a=rtcp`) is ignored rather than failing the
//! call, because phones ship with such quirks and RFC 8866 §5.13 asks receivers to
//! ignore attributes they cannot use.

mod rewrite;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use rewrite::Anchor;

/// Why an SDP body was refused. Line numbers are 1-based lines of the body as
/// received (blank lines counted), so they match what a packet capture shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("empty SDP body")]
    Empty,
    #[error("line {line}: expected v=0 as the first line, got {found:?}")]
    MissingVersion { line: usize, found: String },
    #[error("line {line}: unsupported SDP version {found:?}, expected 0")]
    BadVersion { line: usize, found: String },
    #[error("line {line}: expected <letter>=<value>")]
    MalformedLine { line: usize },
    #[error("line {line}: bad o= line: {reason}")]
    BadOrigin { line: usize, reason: &'static str },
    #[error("line {line}: bad c= line: {reason}")]
    BadConnection { line: usize, reason: &'static str },
    #[error("line {line}: bad m= line: {reason}")]
    BadMedia { line: usize, reason: &'static str },
    #[error("line {line}: m-line {index} has a port but no c= at media or session level")]
    NoConnection { line: usize, index: usize },
}

/// Direction attribute of a stream (RFC 3264 §5.1), seen from the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute text without `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// RFC 2543 hold (`c=0.0.0.0`) means "do not send to me": the author may still
    /// send, so sendrecv becomes sendonly and recvonly becomes inactive.
    fn held(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload format of an RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    pub clock_rate: u32,
    /// The optional third rtpmap field; `None` when absent (one channel).
    pub channels: Option<u8>,
}

/// What one m= line asks for, with session-level defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// `audio`, `video`, ...
    pub kind: String,
    /// 0 = rejected or disabled stream.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVPF`, ...
    pub proto: String,
    /// The fmt list as text (payload types for RTP profiles).
    pub formats: Vec<String>,
    /// Media-level c= else session-level c=, with the m= port. `None` when the port is
    /// 0 or the address is unspecified (`0.0.0.0`/`::`, RFC 2543 hold): neither is a
    /// place to send media.
    pub rtp: Option<SocketAddr>,
    /// From a=rtcp (RFC 3605), else RTP port + 1; equal to `rtp` under rtcp-mux.
    pub rtcp: Option<SocketAddr>,
    /// a=rtcp-mux (RFC 5761).
    pub rtcp_mux: bool,
    /// Media-level direction, else session-level, else sendrecv; an unspecified
    /// connection address turns it into sendonly/inactive.
    pub direction: Direction,
    /// From a=rtpmap, plus the RFC 3551 static payload types that have no rtpmap.
    pub codecs: Vec<Codec>,
}

/// A parsed SDP body that remembers every line, so [`Sdp::rewrite`] changes only
/// what anchoring needs.
#[derive(Debug, Clone)]
pub struct Sdp {
    /// Every non-blank line without its line end.
    lines: Vec<String>,
    /// 1-based line number in the original text of each entry of `lines`.
    numbers: Vec<usize>,
    /// The session-level c= address, if any.
    session_conn: Option<IpAddr>,
    sections: Vec<Section>,
    media: Vec<MediaInfo>,
}

/// Where an m= section lives in `lines`, and what rewriting needs to know about it.
#[derive(Debug, Clone)]
struct Section {
    /// Index of the m= line; the section runs to the next m= line or the end.
    start: usize,
    end: usize,
    /// Whether the section has a c= line of its own.
    has_conn: bool,
    /// Whether its effective address is unspecified (RFC 2543 hold).
    held_by_address: bool,
}

impl Sdp {
    /// Parses an SDP body. Accepts `\r\n` or bare `\n` line ends and ignores blank
    /// lines (some stacks append one).
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        let mut lines = Vec::new();
        let mut numbers = Vec::new();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let b = line.as_bytes();
            if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
                return Err(SdpError::MalformedLine { line: n + 1 });
            }
            lines.push(line.to_owned());
            numbers.push(n + 1);
        }
        let Some(first) = lines.first() else {
            return Err(SdpError::Empty);
        };
        if !first.starts_with("v=") {
            return Err(SdpError::MissingVersion {
                line: numbers[0],
                found: clip(first),
            });
        }
        if first[2..].trim() != "0" {
            return Err(SdpError::BadVersion {
                line: numbers[0],
                found: clip(&first[2..]),
            });
        }

        let starts: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("m="))
            .collect();
        let session_end = starts.first().copied().unwrap_or(lines.len());

        let mut session_conn = None;
        let mut session_dir = None;
        for i in 1..session_end {
            let line = &lines[i];
            match line.as_bytes()[0] {
                b'o' => check_origin(&line[2..]).map_err(|reason| SdpError::BadOrigin {
                    line: numbers[i],
                    reason,
                })?,
                b'c' if session_conn.is_none() => {
                    session_conn = Some(parse_connection(&line[2..]).map_err(|reason| {
                        SdpError::BadConnection {
                            line: numbers[i],
                            reason,
                        }
                    })?);
                }
                b'a' => {
                    if let Some(d) = Direction::from_attr(attribute(line).0) {
                        session_dir = Some(d);
                    }
                }
                _ => {}
            }
        }

        let mut sections = Vec::with_capacity(starts.len());
        let mut media = Vec::with_capacity(starts.len());
        for (index, &start) in starts.iter().enumerate() {
            let end = starts.get(index + 1).copied().unwrap_or(lines.len());
            let (info, section) = parse_section(
                &lines[start..end],
                &numbers[start..end],
                index,
                session_conn,
                session_dir,
            )?;
            sections.push(Section {
                start,
                end,
                ..section
            });
            media.push(info);
        }
        Ok(Sdp {
            lines,
            numbers,
            session_conn,
            sections,
            media,
        })
    }

    /// One entry per m= line, in order.
    pub fn media(&self) -> Vec<MediaInfo> {
        self.media.clone()
    }

    /// The o= sess-version, if the o= line is present. RFC 3264 §8: an offer with an
    /// unchanged version changes nothing, so a caller can skip re-anchoring.
    pub fn session_version(&self) -> Option<u64> {
        let o = self.lines.iter().find(|l| l.starts_with("o="))?;
        o[2..].split_whitespace().nth(2)?.parse().ok()
    }

    /// 1-based line number, in the text given to [`Sdp::parse`], of the m= line of
    /// stream `index`.
    pub fn media_line_number(&self, index: usize) -> Option<usize> {
        self.sections.get(index).map(|s| self.numbers[s.start])
    }
}

/// Prints the body as parsed (blank lines dropped), with `\r\n` line ends.
impl fmt::Display for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            f.write_str(line)?;
            f.write_str("\r\n")?;
        }
        Ok(())
    }
}

/// Errors quote at most this much of a line: never a whole body in an error string.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `a=name:value` → (`name`, `Some(value)`); `a=flag` → (`flag`, `None`). Non-a= lines
/// give an empty name.
fn attribute(line: &str) -> (&str, Option<&str>) {
    let Some(rest) = line.strip_prefix("a=") else {
        return ("", None);
    };
    match rest.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (rest.trim(), None),
    }
}

/// RFC 8866 §5.2: `<username> <sess-id> <sess-version> <nettype> <addrtype> <addr>`.
/// Only the shape is checked: the address may be a host name, and it is replaced on
/// rewrite anyway.
fn check_origin(value: &str) -> Result<(), &'static str> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    if fields.len() != 6 {
        return Err("expected 6 fields");
    }
    if fields[2].parse::<u64>().is_err() {
        return Err("session version is not a number");
    }
    Ok(())
}

/// RFC 8866 §5.7: `IN IP4|IP6 <addr>[/ttl][/count]`. Host names are refused: the relay
/// needs an address to send to, and resolving one here would block the call task.
fn parse_connection(value: &str) -> Result<IpAddr, &'static str> {
    let mut fields = value.split_whitespace();
    let (Some(net), Some(family), Some(addr), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected IN <IP4|IP6> <address>");
    };
    if net != "IN" {
        return Err("network type is not IN");
    }
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| "address is not an IP literal")?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        ("IP4" | "IP6", _) => Err("address does not match its address type"),
        _ => Err("address type is not IP4 or IP6"),
    }
}

/// RFC 8866 §5.14: `<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media_line(value: &str) -> Result<(String, u16, String, Vec<String>), &'static str> {
    let mut fields = value.split_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("expected <media> <port> <proto> <fmt>...");
    };
    let port = port.split('/').next().unwrap_or(port);
    let port: u16 = port.parse().map_err(|_| "port is not a number 0-65535")?;
    let formats = fields.map(str::to_owned).collect();
    Ok((kind.to_owned(), port, proto.to_owned(), formats))
}

/// RFC 3551 table 4: payload types whose encoding needs no rtpmap. G.722's RTP clock
/// is 8000 although it samples at 16 kHz (RFC 3551 §4.5.2).
fn static_codec(pt: u8) -> Option<Codec> {
    let (name, clock_rate) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Codec {
        pt,
        name: name.to_owned(),
        clock_rate,
        channels: None,
    })
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`; `None` when malformed.
fn parse_rtpmap(value: &str) -> Option<Codec> {
    let (pt, enc) = value.split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok().filter(|&pt| pt < 128)?;
    let mut parts = enc.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty())?.to_owned();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(Codec {
        pt,
        name,
        clock_rate,
        channels,
    })
}

/// `a=rtcp:<port> [IN IP4|IP6 <addr>]`; `None` when malformed.
fn parse_rtcp(value: &str) -> Option<(u16, Option<IpAddr>)> {
    let (port, rest) = match value.split_once(char::is_whitespace) {
        Some((p, rest)) => (p, Some(rest)),
        None => (value, None),
    };
    let port = port.parse().ok()?;
    let addr = match rest {
        Some(rest) => Some(parse_connection(rest).ok()?),
        None => None,
    };
    Some((port, addr))
}

fn parse_section(
    lines: &[String],
    numbers: &[usize],
    index: usize,
    session_conn: Option<IpAddr>,
    session_dir: Option<Direction>,
) -> Result<(MediaInfo, Section), SdpError> {
    let (kind, port, proto, formats) =
        parse_media_line(&lines[0][2..]).map_err(|reason| SdpError::BadMedia {
            line: numbers[0],
            reason,
        })?;
    let mut conn = None;
    let mut direction = None;
    let mut rtcp_attr = None;
    let mut rtcp_mux = false;
    let mut rtpmaps = Vec::new();
    for (line, &number) in lines.iter().zip(numbers).skip(1) {
        match line.as_bytes()[0] {
            b'c' if conn.is_none() => {
                conn = Some(parse_connection(&line[2..]).map_err(|reason| {
                    SdpError::BadConnection {
                        line: number,
                        reason,
                    }
                })?);
            }
            b'a' => match attribute(line) {
                ("rtcp", Some(v)) => rtcp_attr = parse_rtcp(v),
                ("rtcp-mux", _) => rtcp_mux = true,
                ("rtpmap", Some(v)) => rtpmaps.extend(parse_rtpmap(v)),
                (name, None) => direction = Direction::from_attr(name).or(direction),
                _ => {}
            },
            _ => {}
        }
    }
    let has_conn = conn.is_some();
    let addr = conn.or(session_conn);
    if port != 0 && addr.is_none() {
        return Err(SdpError::NoConnection {
            line: numbers[0],
            index,
        });
    }
    let held_by_address = port != 0 && addr.is_some_and(|a| a.is_unspecified());
    let mut direction = direction.or(session_dir).unwrap_or(Direction::SendRecv);
    if held_by_address {
        direction = direction.held();
    }

    let rtp = addr
        .filter(|a| port != 0 && !a.is_unspecified())
        .map(|a| SocketAddr::new(a, port));
    let rtcp = rtp.map(|rtp| {
        if rtcp_mux {
            return rtp;
        }
        match rtcp_attr {
            Some((p, a)) => SocketAddr::new(a.unwrap_or(rtp.ip()), p),
            None => SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
        }
    });

    // Payload types only mean something under an RTP profile (RTP/AVP, RTP/SAVPF,
    // UDP/TLS/RTP/SAVPF); `m=application 9 TCP/BFCP *` lists other things.
    let codecs = if proto.contains("RTP") {
        formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| {
                rtpmaps
                    .iter()
                    .find(|c| c.pt == pt)
                    .cloned()
                    .or_else(|| static_codec(pt))
            })
            .collect()
    } else {
        Vec::new()
    };

    let info = MediaInfo {
        kind,
        port,
        proto,
        formats,
        rtp,
        rtcp,
        rtcp_mux,
        direction,
        codecs,
    };
    let section = Section {
        start: 0,
        end: 0,
        has_conn,
        held_by_address,
    };
    Ok((info, section))
}
