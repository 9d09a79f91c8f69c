//! Small files kept inline with the inode: stored without any datanode, moved to extents when they grow.

use super::*;
use crate::backend::MetaBackend;
use crate::vfs::{FallocateMode, SetAttr};

async fn stored(meta: &MemMeta, ino: InodeId) -> (u64, usize, Option<Vec<u8>>) {
    let l = meta.extent_list(ino).await.unwrap();
    (l.size, l.extents.len(), l.inline.map(|b| b.to_vec()))
}

#[tokio::test]
async fn a_small_file_is_stored_inline_and_read_by_another_client() {
    let (v, meta, data) = vfs();
    let (ino, fh) = create(&v, "small").await;
    v.write(fh, 0, b"hello ").await.unwrap();
    v.flush(fh).await.unwrap();
    v.write(fh, 6, b"world").await.unwrap();
    v.release(fh).await.unwrap();
    assert_eq!(stored(&meta, ino).await, (11, 0, Some(b"hello world".to_vec())));
    assert_eq!(data.stats().writes + data.stats().creates, 0, "no datanode involved");
    let other = second_client(&meta, &data);
    let fh = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    assert_eq!(&other.read(fh, 0, 100).await.unwrap()[..], b"hello world");
    assert_eq!(&other.read(fh, 6, 3).await.unwrap()[..], b"wor");
    assert_eq!(data.stats().reads, 0);
}

#[tokio::test]
async fn a_growing_file_moves_to_extents_with_its_inline_bytes() {
    let cfg = VfsConfig { inline_max: 100, ..VfsConfig::default() };
    let (v, meta, data) = vfs_with(cfg);
    let (ino, fh) = create(&v, "grows").await;
    v.write(fh, 0, &[1u8; 80]).await.unwrap();
    v.flush(fh).await.unwrap();
    assert_eq!(stored(&meta, ino).await.2.map(|b| b.len()), Some(80));
    // Overlaps the inline bytes and goes past the limit.
    v.write(fh, 50, &[2u8; 100]).await.unwrap();
    v.flush(fh).await.unwrap();
    let (size, keys, inline) = stored(&meta, ino).await;
    assert_eq!((size, inline), (150, None));
    assert!(keys > 0 && data.stats().writes > 0);
    let other = second_client(&meta, &data);
    let fh2 = other.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    let got = other.read(fh2, 0, 1000).await.unwrap();
    assert_eq!(got.len(), 150);
    assert!(got[..50].iter().all(|b| *b == 1) && got[50..].iter().all(|b| *b == 2), "{got:?}");
}

#[tokio::test]
async fn truncate_and_punch_work_on_inline_bytes() {
    let (v, meta, _data) = vfs();
    let (ino, fh) = create(&v, "cut").await;
    v.write(fh, 0, &[7u8; 1000]).await.unwrap();
    v.flush(fh).await.unwrap();
    let set = SetAttr { size: Some(300), ..Default::default() };
    v.setattr(ino, &set, Some(fh), &root()).await.unwrap();
    let set = SetAttr { size: Some(600), ..Default::default() };
    v.setattr(ino, &set, Some(fh), &root()).await.unwrap();
    let got = v.read(fh, 0, 1000).await.unwrap();
    assert_eq!(got.len(), 600);
    assert!(got[..300].iter().all(|b| *b == 7) && got[300..].iter().all(|b| *b == 0));
    let mode = FallocateMode(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE);
    v.fallocate(fh, 100, 1000, mode).await.unwrap();
    let got = v.read(fh, 0, 1000).await.unwrap();
    assert!(got[..100].iter().all(|b| *b == 7) && got[100..].iter().all(|b| *b == 0));
    assert_eq!(stored(&meta, ino).await.0, 600);
    // Cut to nothing, the file can take extents again.
    let set = SetAttr { size: Some(0), ..Default::default() };
    v.setattr(ino, &set, Some(fh), &root()).await.unwrap();
    assert_eq!(stored(&meta, ino).await, (0, 0, None));
}

#[tokio::test]
async fn a_writer_that_missed_a_move_to_inline_reloads_and_keeps_both_writes() {
    let (a, meta, data) = vfs_with(VfsConfig { inline_max: 100, ..VfsConfig::default() });
    let (ino, fha) = create(&a, "raced").await;
    // `a` knows the file as empty; meanwhile another client stores it inline.
    let b = second_client(&meta, &data);
    let fhb = b.open(ino, libc::O_RDWR, &root()).await.unwrap();
    b.write(fhb, 0, &[3u8; 40]).await.unwrap();
    b.release(fhb).await.unwrap();
    // Too big for inline: `a` sends keys, is told its view is stale, reloads and moves the file out.
    a.write(fha, 20, &[4u8; 200]).await.unwrap();
    a.release(fha).await.unwrap();
    let (size, _, inline) = stored(&meta, ino).await;
    assert_eq!((size, inline), (220, None));
    let fh = b.open(ino, libc::O_RDONLY, &root()).await.unwrap();
    let got = b.read(fh, 0, 1000).await.unwrap();
    assert!(got[..20].iter().all(|x| *x == 3) && got[20..220].iter().all(|x| *x == 4), "{got:?}");
}
