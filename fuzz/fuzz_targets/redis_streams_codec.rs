//! What other nodes write to the `redis-streams` wire (stream entries, pub/sub messages,
//! saved sessions): decoded without a panic; a broadcast entry that decodes encodes back to
//! one that decodes the same, and a session that decodes encodes back to itself.
//!
//! Input: the first byte picks what the rest is — an entry's `data` field (with a `type`
//! taken from the second byte), a published message, or a saved session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::adapter::streams_codec as codec;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 3 {
        0 => {
            let Some((&kind, body)) = rest.split_first() else {
                return;
            };
            let fields = vec![
                ("uid".to_owned(), b"fuzzer".to_vec()),
                ("nsp".to_owned(), b"/".to_vec()),
                ("type".to_owned(), (kind % 14).to_string().into_bytes()),
                ("data".to_owned(), body.to_vec()),
            ];
            let Some(message) = codec::decode_entry(&fields) else {
                return;
            };
            if let Some((packet, opts, _)) = codec::broadcast_of(&message) {
                let keep = codec::kept_of(&message);
                let again = codec::kept_broadcast_entry("fuzzer", &packet, &opts, keep.as_ref())
                    .map(|e| e.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Vec<_>>())
                    .and_then(|e| codec::decode_entry(&e));
                if let Some(m) = again
                    && let Some((packet_again, opts_again, _)) = codec::broadcast_of(&m)
                {
                    assert_eq!(packet_again, packet);
                    assert_eq!(opts_again.rooms, opts.rooms);
                    assert_eq!(opts_again.except, opts.except);
                    assert_eq!(codec::kept_of(&m), keep);
                }
            }
        }
        1 => {
            if let Some(message) = codec::decode_published(rest) {
                let _ = codec::broadcast_of(&message);
            }
        }
        _ => {
            if let Some(saved) = codec::decode_session(rest) {
                let text = codec::encode_session(&saved);
                assert_eq!(codec::decode_session(text.as_bytes()), Some(saved));
            }
        }
    }
});
