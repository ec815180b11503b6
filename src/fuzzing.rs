//! The door `fuzz/` comes in by: the few internals its targets drive that a host never
//! needs. Hidden from the documentation, and not part of the API.

use rhai::Dynamic;

/// Decodes a value as it travels between processes (Queue, Pipe, Pool), or says why not.
pub fn codec_decode(bytes: &[u8]) -> Result<Dynamic, String> {
    crate::ipc::codec::decode(bytes).map_err(|e| e.to_string())
}

/// Encodes a value as it travels between processes, appending to `out`.
pub fn codec_encode(value: &Dynamic, out: &mut Vec<u8>) -> Result<(), String> {
    crate::ipc::codec::encode(value, out).map_err(|e| e.to_string())
}

/// Forgets a Ctrl-C or SIGTERM that stopped the last script, so that the next one runs.
pub fn clear_signal() {
    crate::signal::clear();
}
