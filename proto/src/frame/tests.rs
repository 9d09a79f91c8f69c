use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

use super::*;

fn encode(frame: &Frame) -> BytesMut {
    let mut buf = BytesMut::new();
    FrameCodec::default().encode(frame.clone(), &mut buf).unwrap();
    buf
}

fn sample(id: u64, meta: &'static [u8], data: Vec<u8>) -> Frame {
    Frame::request(Opcode::META_LOOKUP, id, Bytes::from_static(meta), Bytes::from(data))
}

fn decode_one(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    FrameCodec::default().decode(buf)
}

#[test]
fn header_layout() {
    let f = Frame::response(Opcode(0x0102), 0x0A0B, Bytes::from_static(b"m"), Bytes::from_static(b"dd"));
    let buf = encode(&f);
    assert_eq!(buf.len(), HEADER_LEN + 3);
    assert_eq!(&buf[..24], &[0xFE, 0x22, 1, 2, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0x0B, 0, 0, 0, 1, 0, 0, 0, 2]);
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..24]);
    h.update(b"mdd");
    assert_eq!(&buf[24..28], &h.finalize().to_be_bytes());
}

#[test]
fn a_header_then_meta_and_data_is_the_whole_encoding() {
    let f = sample(9, b"meta", (0..70_000).map(|i| i as u8).collect());
    let mut head = BytesMut::new();
    FrameCodec::default().encode_header(&f, &mut head).unwrap();
    assert_eq!(head.len(), HEADER_LEN);
    head.extend_from_slice(&f.meta);
    head.extend_from_slice(&f.data);
    assert_eq!(head, encode(&f));
    let small = FrameCodec::new(HEADER_LEN + 10);
    assert!(matches!(small.encode_header(&f, &mut BytesMut::new()), Err(FrameError::TooLarge { .. })));
}

#[test]
fn round_trip_empty() {
    let f = Frame::request(Opcode::HELLO, 0, Bytes::new(), Bytes::new());
    let mut buf = encode(&f);
    assert_eq!(buf.len(), HEADER_LEN);
    assert_eq!(decode_one(&mut buf).unwrap(), Some(f));
    assert!(buf.is_empty());
}

#[test]
fn round_trip_every_kind_and_error_meta() {
    let code = ErrorCode::Stale { current: 3 };
    for f in [
        sample(1, b"abc", vec![1, 2, 3]),
        Frame::response(Opcode::DATA_READ, 2, Bytes::new(), Bytes::from_static(b"x")),
        Frame::error(Opcode::DATA_READ, 3, &code),
    ] {
        let mut buf = encode(&f);
        assert_eq!(decode_one(&mut buf).unwrap().as_ref(), Some(&f));
    }
    let mut buf = encode(&Frame::error(Opcode::DATA_READ, 3, &code));
    let f = decode_one(&mut buf).unwrap().unwrap();
    assert_eq!(crate::msg::decode::<ErrorCode>(&f.meta).unwrap(), code);
}

#[test]
fn round_trip_large_data_without_copying() {
    let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
    let f = sample(7, b"meta", data);
    let mut buf = encode(&f);
    let base = buf.as_ptr() as usize;
    let got = decode_one(&mut buf).unwrap().unwrap();
    assert_eq!(got, f);
    // The payload is a view into the read buffer, not a copy.
    assert_eq!(got.meta.as_ptr() as usize, base + HEADER_LEN);
    assert_eq!(got.data.as_ptr() as usize, base + HEADER_LEN + 4);
}

#[test]
fn several_frames_in_one_buffer() {
    let frames: Vec<Frame> = (0..5).map(|i| sample(i, b"m", vec![i as u8; i as usize * 10])).collect();
    let mut buf = BytesMut::new();
    for f in &frames {
        buf.extend_from_slice(&encode(f));
    }
    let mut codec = FrameCodec::default();
    for f in &frames {
        assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(f));
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
}

#[test]
fn frame_split_across_reads() {
    let a = sample(1, b"first", vec![9; 100]);
    let b = sample(2, b"", vec![8; 3]);
    let mut wire = encode(&a);
    wire.extend_from_slice(&encode(&b));
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    // One byte at a time: the worst case for partial headers and bodies.
    for byte in wire.iter() {
        buf.put_u8(*byte);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, vec![a, b]);
}

#[test]
fn bad_magic() {
    let mut buf = encode(&sample(1, b"", vec![]));
    buf[0] = 0x12;
    assert!(matches!(decode_one(&mut buf), Err(FrameError::BadMagic(0x1222))));
}

#[test]
fn bad_version() {
    let mut buf = encode(&sample(1, b"", vec![]));
    buf[2] = 9;
    assert!(matches!(decode_one(&mut buf), Err(FrameError::BadVersion(9))));
}

#[test]
fn bad_kind() {
    let mut buf = encode(&sample(1, b"", vec![]));
    buf[3] = 0;
    assert!(matches!(decode_one(&mut buf), Err(FrameError::BadKind(0))));
}

#[test]
fn oversized_is_rejected_from_the_header_alone() {
    let mut buf = encode(&sample(1, b"", vec![]));
    buf[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    buf.truncate(HEADER_LEN);
    let err = FrameCodec::new(1024).decode(&mut buf).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { max: 1024, .. }), "{err}");
    // Nothing was reserved for the body.
    assert!(buf.capacity() < 4096);
}

#[test]
fn oversized_limit_counts_the_whole_frame() {
    let f = sample(1, b"", vec![0; 100]);
    let mut buf = encode(&f);
    assert!(matches!(FrameCodec::new(HEADER_LEN + 99).decode(&mut buf.clone()), Err(FrameError::TooLarge { .. })));
    assert_eq!(FrameCodec::new(HEADER_LEN + 100).decode(&mut buf).unwrap(), Some(f));
}

#[test]
fn encoding_an_oversized_frame_fails() {
    let mut buf = BytesMut::new();
    let err = FrameCodec::new(64).encode(sample(1, b"", vec![0; 64]), &mut buf).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { len: 92, max: 64 }));
    assert!(buf.is_empty());
}

#[test]
fn flipped_payload_byte_fails_the_checksum() {
    let mut buf = encode(&sample(1, b"meta", vec![5; 64]));
    let last = buf.len() - 1;
    buf[last] ^= 0x40;
    assert!(matches!(decode_one(&mut buf), Err(FrameError::Checksum { .. })));
}

#[test]
fn flipped_header_byte_fails_the_checksum() {
    let mut buf = encode(&sample(1, b"meta", vec![5; 64]));
    buf[10] ^= 1; // inside the request id
    assert!(matches!(decode_one(&mut buf), Err(FrameError::Checksum { .. })));
}

#[test]
fn truncated_at_eof() {
    let wire = encode(&sample(1, b"meta", vec![5; 64]));
    for cut in [1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 5, wire.len() - 1] {
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut codec = FrameCodec::default();
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}");
        assert!(matches!(codec.decode_eof(&mut buf), Err(FrameError::Truncated)), "cut at {cut}");
    }
}

#[tokio::test]
async fn framed_reader_reports_truncation_after_whole_frames() {
    let a = sample(1, b"a", vec![1; 10]);
    let mut wire = encode(&a);
    wire.extend_from_slice(&encode(&sample(2, b"b", vec![2; 10]))[..HEADER_LEN + 3]);
    let mut reader = FramedRead::new(&wire[..], FrameCodec::default());
    assert_eq!(reader.next().await.unwrap().unwrap(), a);
    assert!(matches!(reader.next().await, Some(Err(FrameError::Truncated))));
}
