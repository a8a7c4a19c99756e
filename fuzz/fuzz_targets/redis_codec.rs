//! What other nodes publish over Redis (msgpack broadcasts, JSON or msgpack requests):
//! decoded without a panic; a broadcast that decodes encodes back to one that decodes the
//! same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::adapter::codec;

fuzz_target!(|data: &[u8]| {
    if let Some(b) = codec::decode_broadcast(data) {
        let again = codec::encode_kept_broadcast(&b.uid, &b.packet, &b.opts, b.keep.as_ref())
            .and_then(|bytes| codec::decode_broadcast(&bytes));
        if let Some(again) = again {
            assert_eq!(again.packet, b.packet);
            assert_eq!(again.opts, b.opts);
            assert_eq!(again.keep, b.keep);
        }
    }
    if let Some((request, _attachments)) = codec::decode_request(data) {
        let _ = codec::json_opts(request.get("opts"));
    }
});
