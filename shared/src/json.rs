//! JSON written straight into a `String`. The log lines and the metrics line are built this
//! way on every request, without an intermediate document; each function writes what
//! serde_json writes for the same value, the exponent's sign of a float aside (the tests
//! compare them).

use std::fmt;

/// What replaces each byte a JSON string cannot hold as it is: 0 for none, `u` for a
/// `\u00XX` escape, else the character after the backslash (serde_json's choices).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// `value` as a JSON string.
pub fn push_str(out: &mut String, value: &str) {
    out.push('"');
    push_str_contents(out, value);
    out.push('"');
}

/// `value`'s characters as a JSON string holds them, escaped where JSON requires. Only ASCII
/// bytes are ever escaped, so the text between them is copied in runs, never split inside a
/// character.
pub fn push_str_contents(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain = 0;
    for (at, &byte) in value.as_bytes().iter().enumerate() {
        let escape = ESCAPE[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        out.push_str(&value[plain..at]);
        out.push('\\');
        if escape == b'u' {
            out.push_str("u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push(char::from(escape));
        }
        plain = at + 1;
    }
    out.push_str(&value[plain..]);
}

/// A `fmt::Write` that escapes what it is given into a JSON string's contents.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        push_str_contents(self.0, text);
        Ok(())
    }
}

/// A value's `Display` (or, given `format_args!("{v:?}")`, its `Debug`) rendering as a JSON
/// string, escaped as it is rendered.
pub fn push_display(out: &mut String, value: impl fmt::Display) {
    out.push('"');
    let _ = fmt::Write::write_fmt(&mut Escaped(out), format_args!("{value}"));
    out.push('"');
}

/// A float as JSON: the shortest digits that read back as the same value, with a fraction
/// even when it is zero (`2.0`); `null` for a value JSON cannot hold.
pub fn push_f64(out: &mut String, value: f64) {
    if value.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(value));
    } else {
        out.push_str("null");
    }
}

/// An integer as JSON.
pub fn push_int(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut every_byte = String::new();
        for c in (0u8..0x80).map(char::from) {
            every_byte.push(c);
        }
        for text in [
            "",
            "plain",
            "é ✓ 𝄞 and \"quotes\", back\\slash",
            "line\nfeed\r\ttab\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            &every_byte,
        ] {
            let mut out = String::new();
            push_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
            let mut shown = String::new();
            push_display(&mut shown, format_args!("{text:?}"));
            assert_eq!(shown, serde_json::to_string(&format!("{text:?}")).unwrap());
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for value in [
            0.0,
            -0.0,
            1.0,
            2.5,
            0.1,
            1.0 / 3.0,
            1e-7,
            123_456.789,
            1e16,
            1e300,
            -42.125,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            let mut out = String::new();
            push_f64(&mut out, value);
            // The same number as serde_json's, to the bit, in as few digits (serde_json
            // spells an exponent `e+16` where this writes `e16`).
            let theirs = serde_json::to_string(&value).unwrap();
            assert_eq!(
                out.parse::<f64>().unwrap().to_bits(),
                value.to_bits(),
                "{out}"
            );
            assert_eq!(
                out.replace("e", "e+").replace("e+-", "e-"),
                theirs,
                "{value}"
            );
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(parsed.as_f64(), Some(value));
        }
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut out = String::new();
            push_f64(&mut out, value);
            assert_eq!(out, "null");
        }
        for value in [0u64, 7, 1_000, u64::MAX] {
            let mut out = String::new();
            push_int(&mut out, value);
            assert_eq!(out, serde_json::to_string(&value).unwrap());
        }
        let mut out = String::new();
        push_int(&mut out, i64::MIN);
        assert_eq!(out, i64::MIN.to_string());
    }
}
