//! socket.io-msgpack-parser messages (what a client sends with `parser = "msgpack"`):
//! decoded without a panic; a message that decodes, encoded back the way the server sends
//! packets, decodes again — to the same packet once normalised (a client's literal
//! placeholder object may name an attachment, as with the default parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::socketio::Encoded;
use switchboard::socketio::msgpack;
use switchboard::socketio::packet::Packet;

/// The packet the server would send for `packet` with `attachments`, decoded again.
fn round_trip(packet: &Packet, attachments: &[bytes::Bytes]) -> (Packet, Vec<bytes::Bytes>) {
    let encoded = Encoded::from_parts(packet.text(), attachments.to_vec().into());
    let again = encoded.msgpack().expect("a parsed packet encodes");
    msgpack::decode(&again, 10).expect("what the server sends decodes")
}

fuzz_target!(|data: &[u8]| {
    if let Ok((packet, attachments)) = msgpack::decode(data, 10) {
        assert!(attachments.len() <= 10);
        assert_eq!(packet.attachments, attachments.len());
        let (once, once_attachments) = round_trip(&packet, &attachments);
        assert_eq!((once.kind, &once.nsp, once.id), (packet.kind, &packet.nsp, packet.id));
        let (twice, twice_attachments) = round_trip(&once, &once_attachments);
        assert_eq!((twice, twice_attachments), (once, once_attachments));
    }
});
