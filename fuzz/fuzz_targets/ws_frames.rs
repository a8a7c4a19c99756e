//! A client's WebSocket bytes, arriving in pieces of any size: frames joined into messages,
//! never one over the limit, never a panic, and the same messages however the bytes are cut.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard::engineio::assemble::{Assembler, Message, Next};

const MAX: usize = 1000;

/// Feed `data` `piece` bytes at a time; the messages and the error that ended them.
fn read(data: &[u8], piece: usize) -> (Vec<Message>, Option<u16>) {
    let mut assembler = Assembler::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match assembler.next(&mut buf) {
            Ok(Next::Message(m)) => {
                if let Message::Text(b) | Message::Binary(b) = &m {
                    assert!(b.len() <= MAX);
                }
                out.push(m);
            }
            Ok(Next::Need(want)) => {
                assert!(want > buf.len());
                if fed == data.len() {
                    return (out, None);
                }
                let end = (fed + piece).min(data.len());
                buf.extend_from_slice(&data[fed..end]);
                fed = end;
            }
            Err(code) => return (out, Some(code)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let whole = read(data, data.len().max(1));
    let pieces = read(data, usize::from(cut % 16) + 1);
    assert_eq!(whole, pieces);
});
