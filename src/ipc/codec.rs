//! The binary form of the values that travel between processes.
//!
//! One tag byte per value, then its data, little-endian:
//!
//! | tag | value | data |
//! |---|---|---|
//! | 0 | `()` | — |
//! | 1, 2 | `false`, `true` | — |
//! | 3 | int | 8 bytes |
//! | 4 | float | 8 bytes (IEEE bits) |
//! | 5 | string | u32 length, UTF-8 bytes |
//! | 6 | char | u32 code point |
//! | 7 | blob | u32 length, bytes |
//! | 8 | array | u32 count, items |
//! | 9 | map | u32 count, then per entry: u32 key length, key bytes, value |
//!
//! Anything else (a closure, a process handle, a lock) cannot travel: [`encode`] fails
//! with the value's type name. Nesting is limited to [`MAX_DEPTH`] levels both ways.

use rhai::{Array, Blob, Dynamic, Map, FLOAT, INT};

/// How deep arrays and maps may nest in a message.
pub(crate) const MAX_DEPTH: usize = 512;

const UNIT: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT_TAG: u8 = 3;
const FLOAT_TAG: u8 = 4;
/// Tag of a string.
pub(crate) const STRING: u8 = 5;
const CHAR: u8 = 6;
/// Tag of a blob.
pub(crate) const BLOB: u8 = 7;
const ARRAY: u8 = 8;
const MAP: u8 = 9;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// A value of this (Rust) type name cannot travel.
    Unsupported(String),
    /// Arrays or maps nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A string, blob, array or map longer than a u32 can count.
    TooLong,
    /// The bytes are not a message this codec wrote.
    Corrupt(&'static str),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(t) => {
                write!(f, "a value of type `{t}` cannot be sent to another process")
            }
            Self::TooDeep => write!(f, "arrays or maps nest more than {MAX_DEPTH} levels deep"),
            Self::TooLong => {
                f.write_str("a string, blob, array or map is too long to send (4 GiB at most)")
            }
            Self::Corrupt(what) => write!(f, "corrupt message: {what}"),
        }
    }
}

/// Appends the encoding of `value` to `out`.
pub(crate) fn encode(value: &Dynamic, out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_at(value, out, 0)
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), CodecError> {
    let len = u32::try_from(len).map_err(|_| CodecError::TooLong)?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn encode_at(value: &Dynamic, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::TooDeep);
    }
    if value.is_shared() {
        return encode_at(&value.flatten_clone(), out, depth);
    }
    if value.is_unit() {
        out.push(UNIT);
    } else if let Ok(b) = value.as_bool() {
        out.push(if b { TRUE } else { FALSE });
    } else if let Ok(i) = value.as_int() {
        out.push(INT_TAG);
        out.extend_from_slice(&i.to_le_bytes());
    } else if let Ok(f) = value.as_float() {
        out.push(FLOAT_TAG);
        out.extend_from_slice(&f.to_bits().to_le_bytes());
    } else if let Ok(c) = value.as_char() {
        out.push(CHAR);
        out.extend_from_slice(&u32::from(c).to_le_bytes());
    } else if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        out.push(STRING);
        put_len(out, s.len())?;
        out.extend_from_slice(s.as_bytes());
    } else if let Some(b) = value.read_lock::<Blob>() {
        out.push(BLOB);
        put_len(out, b.len())?;
        out.extend_from_slice(&b);
    } else if let Some(a) = value.read_lock::<Array>() {
        out.push(ARRAY);
        put_len(out, a.len())?;
        for item in a.iter() {
            encode_at(item, out, depth + 1)?;
        }
    } else if let Some(m) = value.read_lock::<Map>() {
        out.push(MAP);
        put_len(out, m.len())?;
        for (key, item) in m.iter() {
            put_len(out, key.len())?;
            out.extend_from_slice(key.as_bytes());
            encode_at(item, out, depth + 1)?;
        }
    } else {
        return Err(CodecError::Unsupported(crate::convert::type_name(value)));
    }
    Ok(())
}

/// Decodes one whole message: `bytes` must hold exactly one value.
pub(crate) fn decode(bytes: &[u8]) -> Result<Dynamic, CodecError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    if reader.at != bytes.len() {
        return Err(CodecError::Corrupt("trailing bytes after the value"));
    }
    Ok(value)
}

/// The value of a top-level string or blob whose bytes were read on their own (so that a
/// large one is not copied again): `tag` is [`STRING`] or [`BLOB`].
pub(crate) fn decode_bytes(tag: u8, bytes: Vec<u8>) -> Result<Dynamic, CodecError> {
    match tag {
        BLOB => Ok(Dynamic::from_blob(bytes)),
        STRING => String::from_utf8(bytes)
            .map(Dynamic::from)
            .map_err(|_| CodecError::Corrupt("a string is not UTF-8")),
        _ => Err(CodecError::Corrupt("unknown tag")),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(CodecError::Corrupt("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn str(&mut self) -> Result<&'a str, CodecError> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?)
            .map_err(|_| CodecError::Corrupt("a string is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Dynamic, CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::TooDeep);
        }
        Ok(match self.u8()? {
            UNIT => Dynamic::UNIT,
            FALSE => Dynamic::FALSE,
            TRUE => Dynamic::TRUE,
            INT_TAG => Dynamic::from_int(self.u64()? as INT),
            FLOAT_TAG => Dynamic::from_float(FLOAT::from_bits(self.u64()?)),
            STRING => Dynamic::from(self.str()?.to_string()),
            CHAR => Dynamic::from_char(
                char::from_u32(self.u32()?).ok_or(CodecError::Corrupt("bad char"))?,
            ),
            BLOB => {
                let len = self.u32()? as usize;
                Dynamic::from_blob(self.take(len)?.to_vec())
            }
            ARRAY => {
                let count = self.u32()? as usize;
                // Each item takes at least one byte: never reserve more than is left.
                let mut array = Array::with_capacity(count.min(self.bytes.len() - self.at));
                for _ in 0..count {
                    array.push(self.value(depth + 1)?);
                }
                Dynamic::from_array(array)
            }
            MAP => {
                let count = self.u32()? as usize;
                let mut map = Map::new();
                for _ in 0..count {
                    let key = self.str()?;
                    let item = self.value(depth + 1)?;
                    map.insert(key.into(), item);
                }
                Dynamic::from_map(map)
            }
            _ => return Err(CodecError::Corrupt("unknown tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Dynamic) -> Dynamic {
        let mut bytes = Vec::new();
        encode(&value, &mut bytes).unwrap();
        decode(&bytes).unwrap()
    }

    #[test]
    fn scalars_round_trip() {
        assert!(round_trip(Dynamic::UNIT).is_unit());
        assert!(round_trip(Dynamic::TRUE).as_bool().unwrap());
        assert!(!round_trip(Dynamic::FALSE).as_bool().unwrap());
        assert_eq!(
            round_trip(Dynamic::from_int(INT::MIN)).as_int().unwrap(),
            INT::MIN
        );
        assert_eq!(
            round_trip(Dynamic::from_float(-0.5)).as_float().unwrap(),
            -0.5
        );
        assert!(round_trip(Dynamic::from_float(FLOAT::NAN))
            .as_float()
            .unwrap()
            .is_nan());
        assert_eq!(round_trip(Dynamic::from_char('é')).as_char().unwrap(), 'é');
        assert_eq!(
            round_trip(Dynamic::from("héllo".to_string()))
                .into_string()
                .unwrap(),
            "héllo"
        );
    }

    #[test]
    fn bytes_read_on_their_own_decode() {
        assert_eq!(
            decode_bytes(BLOB, vec![1, 2]).unwrap().cast::<Blob>(),
            vec![1, 2]
        );
        assert_eq!(
            decode_bytes(STRING, b"ab".to_vec())
                .unwrap()
                .into_string()
                .unwrap(),
            "ab"
        );
        assert!(decode_bytes(STRING, vec![0xff]).is_err());
        assert!(decode_bytes(UNIT, vec![]).is_err());
    }

    #[test]
    fn blobs_stay_blobs() {
        let back = round_trip(Dynamic::from_blob(vec![0, 255, 7]));
        assert!(back.is_blob());
        assert_eq!(back.cast::<Blob>(), vec![0, 255, 7]);
    }

    #[test]
    fn nested_arrays_and_maps_round_trip() {
        let mut inner = Map::new();
        inner.insert("b".into(), Dynamic::from_blob(vec![1, 2]));
        inner.insert(
            "list".into(),
            Dynamic::from_array(vec![Dynamic::UNIT, Dynamic::from_int(3)]),
        );
        let value = Dynamic::from_array(vec![
            Dynamic::from_map(inner),
            Dynamic::from("x".to_string()),
        ]);
        let back = round_trip(value.clone());
        assert_eq!(format!("{back:?}"), format!("{value:?}"));
        let first = back.cast::<Array>()[0].clone().cast::<Map>();
        assert!(first["b"].is_blob());
    }

    #[test]
    fn shared_values_are_read_through() {
        let shared = Dynamic::from_int(5).into_shared();
        assert_eq!(round_trip(shared).as_int().unwrap(), 5);
    }

    #[test]
    fn other_types_are_refused_with_their_name() {
        let err = encode(&Dynamic::from(std::time::Instant::now()), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CodecError::Unsupported(_)));
    }

    #[test]
    fn corrupt_and_deep_inputs_fail_cleanly() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[42]).is_err());
        assert!(decode(&[STRING, 10, 0, 0, 0, b'a']).is_err());
        assert!(decode(&[ARRAY, 255, 255, 255, 255]).is_err());
        assert!(decode(&[UNIT, UNIT]).is_err());
        let deep = [ARRAY, 1, 0, 0, 0].repeat(MAX_DEPTH + 2);
        assert_eq!(decode(&deep).unwrap_err(), CodecError::TooDeep);
        let mut value = Dynamic::UNIT;
        for _ in 0..MAX_DEPTH + 2 {
            value = Dynamic::from_array(vec![value]);
        }
        assert_eq!(
            encode(&value, &mut Vec::new()).unwrap_err(),
            CodecError::TooDeep
        );
    }
}
