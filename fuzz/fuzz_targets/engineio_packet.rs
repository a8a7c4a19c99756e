//! Engine.IO packets as a WebSocket text frame or a polling record carries them: parsed
//! without a panic, and what parses encodes back to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::engineio::Packet;

fuzz_target!(|data: &[u8]| {
    let text = Bytes::copy_from_slice(data);
    if let Ok(packet) = Packet::parse_text(text.clone()) {
        let again = Packet::parse_text(packet.encode()).expect("an encoded packet parses");
        assert_eq!(again, packet);
        // Packets without data drop what followed their digit; others keep every byte.
        if !matches!(packet, Packet::Close | Packet::Upgrade | Packet::Noop) {
            assert_eq!(packet.encode(), text);
        }
    }
});
