//! Fuzz target: the binary codec of values that travel between processes
//! (src/ipc/codec.rs). Any bytes must decode to a value or a `CodecError`, never a panic or
//! a huge allocation; and whatever decodes must encode, and decode back to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use procscript::fuzzing::{codec_decode, codec_encode};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = codec_decode(data) else {
        return;
    };
    let mut first = Vec::new();
    codec_encode(&value, &mut first).expect("a decoded value encodes");
    let again = codec_decode(&first).expect("an encoded value decodes");
    let mut second = Vec::new();
    codec_encode(&again, &mut second).expect("a decoded value encodes");
    assert_eq!(
        first, second,
        "encode(decode(encode(v))) differs from encode(v)"
    );
});
