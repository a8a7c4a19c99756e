//! Socket.IO packets (namespaces, ack ids, attachments, JSON data, placeholders): parsed
//! without a panic; an event's argument span lies inside its data.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::socketio::packet::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::parse(Bytes::copy_from_slice(data), 10) {
        assert!(packet.attachments <= 10);
        let args = packet.args();
        if let (Some(d), Some(head)) = (&packet.data, &packet.event) {
            assert!(head.args.end <= d.len());
            assert_eq!(args.len(), head.args.len());
        }
        let _ = packet.nsp_str();
    }
});
