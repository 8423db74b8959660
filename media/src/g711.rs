//! G.711 µ-law and A-law (ITU-T G.711), the codecs every phone speaks: encoding the
//! prompts the media server plays, decoding what it records or mixes. Written out
//! here because the algorithm is a few lines and no crate offers both laws in the
//! form the player needs (a sample at a time, no allocation).

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// 16-bit linear PCM to µ-law (PCMU, payload type 0).
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (31 - (s as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// µ-law to 16-bit linear PCM.
pub fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let sign = c & 0x80;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// 16-bit linear PCM to A-law (PCMA, payload type 8).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3; // A-law works on 13 bits
    let sign = if s >= 0 {
        0x80
    } else {
        s = -s - 1;
        0
    };
    let s = s.min(0x0fff);
    let code = if s < 32 {
        (s >> 1) as u8
    } else {
        let exponent = (31 - (s as u32).leading_zeros() as i32 - 4).clamp(1, 7);
        ((exponent << 4) as u8) | ((s >> exponent) & 0x0f) as u8
    };
    (sign | code) ^ 0x55
}

/// A-law to 16-bit linear PCM.
pub fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_code_points() {
        // Silence and full scale as G.711's tables give them.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(alaw_decode(0xd5), 8);
    }

    #[test]
    fn every_code_decodes_and_re_encodes_to_itself() {
        for code in 0..=255u8 {
            let u = ulaw_decode(code);
            // 0x7f and 0xff are both zero in µ-law; the encoder picks 0xff.
            if code != 0x7f {
                assert_eq!(ulaw_encode(u), code, "µ-law {code:#04x} -> {u}");
            }
            let a = alaw_decode(code);
            assert_eq!(alaw_encode(a), code, "A-law {code:#04x} -> {a}");
        }
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            let tolerance = (i32::from(s).abs() / 16).max(16);
            assert!((u - i32::from(s)).abs() <= tolerance, "µ-law {s} -> {u}");
            assert!((a - i32::from(s)).abs() <= tolerance, "A-law {s} -> {a}");
        }
    }
}
