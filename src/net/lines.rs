//! Where a line ends in bytes read ahead from a socket: at its `\n`, or after a number of
//! characters, counting each UTF-8 sequence as one so that a limit never splits one.

/// A scan for the end of a line that resumes where it stopped when more bytes arrive.
#[derive(Debug, Clone)]
pub(super) struct LineScan {
    limit: usize,
    /// How far the scan has looked: the start of the first character not yet counted.
    pos: usize,
    /// Characters counted so far.
    chars: usize,
}

impl LineScan {
    /// A scan for a line of at most `limit` characters (`None`: no limit).
    pub(super) fn new(limit: Option<usize>) -> Self {
        Self {
            limit: limit.unwrap_or(usize::MAX),
            pos: 0,
            chars: 0,
        }
    }

    /// The length in bytes of the line at the start of `buf` (its `\n` included), or `None`
    /// if `buf` does not hold all of it yet. At the end of the stream (`at_eof`) a line may
    /// end without a newline, and a character cut short by the end counts as it is. `buf`
    /// must only have grown since the last call.
    pub(super) fn find(&mut self, buf: &[u8], at_eof: bool) -> Option<usize> {
        while self.pos < buf.len() {
            if self.chars >= self.limit {
                return Some(self.pos);
            }
            let byte = buf[self.pos];
            if byte == b'\n' {
                return Some(self.pos + 1);
            }
            let width = match sequence_width(&buf[self.pos..]) {
                Some(width) => width,
                None if at_eof => buf.len() - self.pos,
                None => return None,
            };
            self.pos += width;
            self.chars += 1;
        }
        (at_eof || self.chars >= self.limit).then_some(self.pos)
    }
}

/// The bytes of the character starting `rest`: its UTF-8 sequence length when the
/// continuation bytes are there and valid, 1 for a byte that starts no valid sequence, and
/// `None` when the sequence is cut short by the end of `rest` (wait for more).
fn sequence_width(rest: &[u8]) -> Option<usize> {
    let width = match rest[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return Some(1),
    };
    for i in 1..width {
        match rest.get(i) {
            None => return None,
            Some(b) if b & 0xC0 != 0x80 => return Some(1),
            Some(_) => {}
        }
    }
    Some(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(buf: &[u8], limit: Option<usize>, at_eof: bool) -> Option<usize> {
        LineScan::new(limit).find(buf, at_eof)
    }

    #[test]
    fn a_line_ends_after_its_newline() {
        assert_eq!(end(b"ab\ncd\n", None, false), Some(3));
        assert_eq!(end(b"\n", None, false), Some(1));
        assert_eq!(end(b"abc", None, false), None);
        assert_eq!(end(b"abc", None, true), Some(3));
        assert_eq!(end(b"", None, true), Some(0));
    }

    #[test]
    fn a_limit_counts_characters_not_bytes() {
        assert_eq!(end(b"abcdef\n", Some(3), false), Some(3));
        assert_eq!(end("héllo\n".as_bytes(), Some(2), false), Some(3));
        assert_eq!(end("你好\n".as_bytes(), Some(1), false), Some(3));
        // The newline still ends a line shorter than the limit.
        assert_eq!(end(b"a\nbcdef", Some(5), false), Some(2));
        // A limit reached exactly at the end of the bytes read so far.
        assert_eq!(end(b"abc", Some(3), false), Some(3));
        assert_eq!(end(b"ab", Some(0), false), Some(0));
    }

    #[test]
    fn a_cut_sequence_waits_for_the_rest() {
        let bytes = "你".as_bytes();
        assert_eq!(end(&bytes[..2], Some(1), false), None);
        assert_eq!(end(&bytes[..2], Some(1), true), Some(2));
        // Invalid bytes count one each, and never hide a newline.
        assert_eq!(end(b"\xe4\nx", None, false), Some(2));
        assert_eq!(end(b"\xff\xfe\n", Some(1), false), Some(1));
    }

    #[test]
    fn scanning_resumes_where_it_stopped() {
        let mut scan = LineScan::new(None);
        let mut buf = b"abc".to_vec();
        assert_eq!(scan.find(&buf, false), None);
        buf.extend_from_slice("d你".as_bytes());
        buf.pop();
        assert_eq!(scan.find(&buf, false), None);
        buf.extend_from_slice(&"你".as_bytes()[2..]);
        buf.extend_from_slice(b"\nrest");
        assert_eq!(scan.find(&buf, false), Some(8));
    }
}
