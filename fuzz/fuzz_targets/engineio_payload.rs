//! Long-polling bodies (records joined by 0x1e, binary as `b` and base64): decoded without a
//! panic; what decodes encodes to a body that decodes to the same packets.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchboard::engineio::payload;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = payload::decode(Bytes::copy_from_slice(data)) {
        let body = payload::encode(&packets);
        assert_eq!(payload::decode(body).expect("an encoded body decodes"), packets);
    }
});
