//! Cutting messages out of a byte stream (TCP, later TLS/WS): RFC 3261 §18.3 frames by
//! Content-Length, and RFC 5626 §4.4.1 uses CRLFCRLF as a keepalive ping answered with
//! CRLF. Pure functions over a buffer, so they are tested without sockets.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole message occupies the first `len` bytes.
    Message {
        len: usize,
    },
    /// A CRLFCRLF keepalive ping of `len` bytes: answer with CRLF.
    Ping {
        len: usize,
    },
    /// Stray line ends between messages (§7.5): skip `len` bytes.
    Skip {
        len: usize,
    },
    Incomplete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("message larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("Content-Length is not a number")]
    BadContentLength,
}

/// Finds the next frame at the start of `buf`. Messages over `max` bytes are an error:
/// the connection cannot be resynchronised and must be closed.
pub fn next_frame(buf: &[u8], max: usize) -> Result<Frame, FrameError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Frame::Ping { len: 4 });
    }
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if lead == buf.len() {
        // Only line ends so far: maybe the start of a ping.
        return Ok(
            if lead >= 2 && !buf.ends_with(b"\r") && !b"\r\n\r".starts_with(buf) {
                Frame::Skip { len: lead }
            } else {
                Frame::Incomplete
            },
        );
    }
    if lead > 0 {
        return Ok(Frame::Skip { len: lead });
    }
    let (head_end, body_start) = match memchr::memmem::find(buf, b"\r\n\r\n") {
        Some(i) => (i, i + 4),
        None => match memchr::memmem::find(buf, b"\n\n") {
            Some(i) => (i, i + 2),
            None => {
                return if buf.len() > max {
                    Err(FrameError::TooLarge { limit: max })
                } else {
                    Ok(Frame::Incomplete)
                };
            }
        },
    };
    let body_len = content_length(&buf[..head_end])?;
    let len = body_start + body_len;
    if len > max {
        return Err(FrameError::TooLarge { limit: max });
    }
    Ok(if buf.len() >= len {
        Frame::Message { len }
    } else {
        Frame::Incomplete
    })
}

/// The Content-Length of a header section; absent means an empty body.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
                return Err(FrameError::BadContentLength);
            }
            return std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(FrameError::BadContentLength);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_by_content_length() {
        assert_eq!(next_frame(MSG, 1000), Ok(Frame::Message { len: MSG.len() }));
        assert_eq!(
            next_frame(&MSG[..MSG.len() - 1], 1000),
            Ok(Frame::Incomplete)
        );
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        assert_eq!(
            next_frame(&two, 1000),
            Ok(Frame::Message { len: MSG.len() })
        );
    }

    #[test]
    fn missing_content_length_means_no_body() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\nOPTIONS";
        assert_eq!(next_frame(m, 1000), Ok(Frame::Message { len: m.len() - 7 }));
    }

    #[test]
    fn keepalives_and_stray_line_ends() {
        assert_eq!(next_frame(b"\r\n\r\n", 1000), Ok(Frame::Ping { len: 4 }));
        assert_eq!(next_frame(b"\r\n", 1000), Ok(Frame::Incomplete));
        assert_eq!(next_frame(b"\r\nOPT", 1000), Ok(Frame::Skip { len: 2 }));
    }

    #[test]
    fn oversize_and_garbage() {
        assert_eq!(next_frame(MSG, 10), Err(FrameError::TooLarge { limit: 10 }));
        assert_eq!(
            next_frame(&[b'x'; 100], 50),
            Err(FrameError::TooLarge { limit: 50 })
        );
        assert_eq!(
            next_frame(b"A sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n", 1000),
            Err(FrameError::BadContentLength)
        );
    }
}
