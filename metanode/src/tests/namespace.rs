//! create, mknod, mkdir, lookup, readdir, unlink, rmdir, link, symlink, readlink: effects and errors.

use ferrum_proto::msg::attr::FileKind;
use ferrum_proto::msg::meta::{ReadDir, Readlink, MAX_SYMLINK_LEN};
use ferrum_proto::{ErrorCode, InodeId};

use super::kit::{root, user, Kit};

const ROOT: InodeId = InodeId::ROOT;

#[tokio::test]
async fn the_root_exists_from_the_start() {
    let k = Kit::one().await;
    let a = k.getattr(ROOT).await.unwrap();
    assert_eq!((a.kind, a.mode, a.nlink, a.uid), (FileKind::Dir, 0o755, 2, 0));
    assert_eq!(k.names(ROOT, 10).await.unwrap(), Vec::<String>::new());
    assert_eq!(k.lookup(ROOT, "..").await.unwrap().inode, ROOT);
    assert_eq!(k.lookup(ROOT, ".").await.unwrap().inode, ROOT);
}

#[tokio::test]
async fn create_and_mkdir_link_into_the_parent() {
    let k = Kit::one().await;
    let before = k.getattr(ROOT).await.unwrap();
    let f = k.create(ROOT, "f").await.unwrap();
    assert_eq!((f.kind, f.mode, f.nlink, f.size), (FileKind::File, 0o644, 1, 0));
    let d = k.mkdir(ROOT, "d").await.unwrap();
    assert_eq!((d.kind, d.nlink), (FileKind::Dir, 2));
    let r = k.getattr(ROOT).await.unwrap();
    assert_eq!(r.nlink, 3, "a subdirectory adds a link to its parent");
    assert!(r.mtime >= before.mtime && r.ctime >= before.ctime);
    let l = k.lookup(ROOT, "f").await.unwrap();
    assert_eq!((l.inode, l.kind), (f.inode, FileKind::File));
    assert_eq!(l.attr.unwrap(), f);
    assert_eq!(k.lookup(d.inode, "..").await.unwrap().inode, ROOT);
    assert_eq!(k.names(ROOT, 10).await.unwrap(), ["d", "f"]);
    k.assert_clean().await;
}

#[tokio::test]
async fn create_errors() {
    let k = Kit::one().await;
    let f = k.create(ROOT, "f").await.unwrap();
    assert_eq!(k.create(ROOT, "f").await, Err(ErrorCode::Exists));
    assert_eq!(k.mkdir(ROOT, "f").await, Err(ErrorCode::Exists));
    assert_eq!(k.create(f.inode, "x").await, Err(ErrorCode::NotDir));
    assert_eq!(k.create(InodeId(999), "x").await, Err(ErrorCode::NotFound));
    assert_eq!(k.create(ROOT, &"x".repeat(256)).await, Err(ErrorCode::NameTooLong));
    k.create(ROOT, &"x".repeat(255)).await.unwrap();
    assert!(matches!(k.create(ROOT, "a/b").await, Err(ErrorCode::InvalidArgument(_))));
    assert!(matches!(k.create(ROOT, "..").await, Err(ErrorCode::InvalidArgument(_))));
    // Search and write permission on the directory.
    let p = k.part(0);
    assert_eq!(k.create_as(ROOT, "u", FileKind::File, 0o644, user(1000), p).await, Err(ErrorCode::PermissionDenied));
    // Devices need privilege; fifos and sockets do not.
    let d = k.mkdir_as(ROOT, "pub", 0o777, root(), p).await.unwrap();
    assert_eq!(k.create_as(d.inode, "dev", FileKind::CharDev, 0o600, user(5), p).await, Err(ErrorCode::NotPermitted));
    let fifo = k.create_as(d.inode, "fifo", FileKind::Fifo, 0o600, user(5), p).await.unwrap();
    assert_eq!((fifo.kind, fifo.uid, fifo.rdev), (FileKind::Fifo, 5, 0));
    let dev = k.create_as(d.inode, "dev", FileKind::BlockDev, 0o600, root(), p).await.unwrap();
    assert_eq!((dev.kind, dev.rdev), (FileKind::BlockDev, 0x0801));
    k.create_as(d.inode, "sock", FileKind::Socket, 0o600, user(5), p).await.unwrap();
    assert!(matches!(
        k.create_as(d.inode, "x", FileKind::Dir, 0o600, root(), p).await,
        Err(ErrorCode::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn setgid_directories_pass_on_their_group() {
    let k = Kit::one().await;
    let p = k.part(0);
    let d = k.mkdir_as(ROOT, "g", 0o2777, root(), p).await.unwrap();
    k.setattr(d.inode, ferrum_proto::msg::attr::SetAttrFields { gid: Some(50), ..Default::default() }, root())
        .await
        .unwrap();
    let f = k.create_as(d.inode, "f", FileKind::File, 0o2755, user(7), p).await.unwrap();
    assert_eq!((f.uid, f.gid, f.mode), (7, 50, 0o755), "group inherited, setgid dropped for a non-member");
    let sub = k.mkdir_as(d.inode, "sub", 0o755, user(7), p).await.unwrap();
    assert_eq!((sub.gid, sub.mode & 0o2000), (50, 0o2000), "subdirectories inherit setgid");
}

#[tokio::test]
async fn lookup_errors_and_search_permission() {
    let k = Kit::one().await;
    assert_eq!(k.lookup(ROOT, "nope").await, Err(ErrorCode::NotFound));
    let f = k.create(ROOT, "f").await.unwrap();
    assert_eq!(k.lookup(f.inode, "x").await, Err(ErrorCode::NotDir));
    assert_eq!(k.lookup(ROOT, &"y".repeat(300)).await, Err(ErrorCode::NameTooLong));
    let d = k.mkdir_as(ROOT, "private", 0o700, root(), k.part(0)).await.unwrap();
    k.create(d.inode, "in").await.unwrap();
    let r = k
        .svc
        .lookup(ferrum_proto::msg::meta::Lookup {
            partition: k.part(0),
            parent: d.inode,
            name: "in".into(),
            cred: user(3),
        })
        .await;
    assert_eq!(r, Err(ErrorCode::PermissionDenied));
    // An inode outside the partition's range is a routing error, not ENOENT.
    let two = Kit::with(&[(1, 1, 100), (2, 100, u64::MAX)], Default::default()).await;
    let r = two.svc.get_attr(ferrum_proto::msg::meta::GetAttr { partition: two.part(0), inode: InodeId(150) }).await;
    assert!(matches!(r, Err(ErrorCode::InvalidArgument(_))), "{r:?}");
}

#[tokio::test]
async fn unlink_removes_the_name_and_orphans_the_last_link() {
    let k = Kit::one().await;
    let f = k.create(ROOT, "f").await.unwrap();
    k.link(f.inode, ROOT, "g", root()).await.unwrap();
    let u = k.unlink(ROOT, "f", root()).await.unwrap();
    assert_eq!((u.inode, u.nlink), (f.inode, 1));
    assert_eq!(k.lookup(ROOT, "f").await, Err(ErrorCode::NotFound));
    let u = k.unlink(ROOT, "g", root()).await.unwrap();
    assert_eq!(u.nlink, 0);
    // Unlinked but not evicted: still there for open handles, and listed as an orphan.
    let a = k.getattr(f.inode).await.unwrap();
    assert_eq!(a.nlink, 0);
    let r = k.fsck(false).await;
    assert!(r.is_clean() && r.orphans == 1, "{r:?}");
    k.svc.evict(ferrum_proto::msg::meta::Evict { partition: k.part(0), op: k.op(), inode: f.inode }).await.unwrap();
    assert_eq!(k.getattr(f.inode).await, Err(ErrorCode::NotFound));
    assert_eq!(k.fsck(false).await.orphans, 0);
}

#[tokio::test]
async fn unlink_errors() {
    let k = Kit::one().await;
    assert_eq!(k.unlink(ROOT, "nope", root()).await, Err(ErrorCode::NotFound));
    k.mkdir(ROOT, "d").await.unwrap();
    assert_eq!(k.unlink(ROOT, "d", root()).await, Err(ErrorCode::IsDir));
    k.create(ROOT, "f").await.unwrap();
    assert_eq!(k.unlink(ROOT, "f", user(9)).await, Err(ErrorCode::PermissionDenied));
}

#[tokio::test]
async fn sticky_directories_protect_other_users_files() {
    let k = Kit::one().await;
    let p = k.part(0);
    let tmp = k.mkdir_as(ROOT, "tmp", 0o1777, root(), p).await.unwrap();
    k.create_as(tmp.inode, "mine", FileKind::File, 0o644, user(10), p).await.unwrap();
    k.create_as(tmp.inode, "theirs", FileKind::File, 0o644, user(11), p).await.unwrap();
    assert_eq!(k.unlink(tmp.inode, "theirs", user(10)).await, Err(ErrorCode::NotPermitted));
    k.unlink(tmp.inode, "mine", user(10)).await.unwrap();
    let r = k.svc.rename(k.rename_req(tmp.inode, "theirs", tmp.inode, "stolen", 0, user(10))).await;
    assert_eq!(r, Err(ErrorCode::NotPermitted));
    // The directory's owner may.
    k.setattr(tmp.inode, ferrum_proto::msg::attr::SetAttrFields { uid: Some(12), ..Default::default() }, root())
        .await
        .unwrap();
    k.unlink(tmp.inode, "theirs", user(12)).await.unwrap();
    k.mkdir_as(tmp.inode, "dir", 0o755, user(11), p).await.unwrap();
    assert_eq!(k.rmdir(tmp.inode, "dir", user(10)).await, Err(ErrorCode::NotPermitted));
    k.rmdir(tmp.inode, "dir", user(11)).await.unwrap();
}

#[tokio::test]
async fn rmdir_only_empty_directories() {
    let k = Kit::one().await;
    let d = k.mkdir(ROOT, "d").await.unwrap();
    k.create(d.inode, "f").await.unwrap();
    assert_eq!(k.rmdir(ROOT, "d", root()).await, Err(ErrorCode::NotEmpty));
    k.unlink(d.inode, "f", root()).await.unwrap();
    k.create(ROOT, "file").await.unwrap();
    assert_eq!(k.rmdir(ROOT, "file", root()).await, Err(ErrorCode::NotDir));
    assert_eq!(k.rmdir(ROOT, "nope", root()).await, Err(ErrorCode::NotFound));
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 3);
    k.rmdir(ROOT, "d", root()).await.unwrap();
    assert_eq!(k.getattr(ROOT).await.unwrap().nlink, 2);
    assert_eq!(k.getattr(d.inode).await, Err(ErrorCode::NotFound));
    // A removed directory takes no new entries.
    assert_eq!(k.create(d.inode, "late").await, Err(ErrorCode::NotFound));
    k.assert_clean().await;
}

#[tokio::test]
async fn link_rules() {
    let k = Kit::one().await;
    let f = k.create(ROOT, "f").await.unwrap();
    let a = k.link(f.inode, ROOT, "g", root()).await.unwrap();
    assert_eq!(a.nlink, 2);
    assert!(a.ctime >= f.ctime);
    assert_eq!(k.ino(ROOT, "g").await.unwrap(), f.inode);
    assert_eq!(k.link(f.inode, ROOT, "g", root()).await, Err(ErrorCode::Exists));
    let d = k.mkdir(ROOT, "d").await.unwrap();
    assert_eq!(k.link(d.inode, ROOT, "d2", root()).await, Err(ErrorCode::NotPermitted));
    assert_eq!(k.link(InodeId(12345), ROOT, "x", root()).await, Err(ErrorCode::NotFound));
    assert_eq!(k.link(f.inode, d.inode, "x", user(3)).await, Err(ErrorCode::PermissionDenied));
    k.assert_clean().await;
}

#[tokio::test]
async fn symlinks_and_readlink() {
    let k = Kit::one().await;
    let s = k.symlink(ROOT, "s", b"../target/\xff", k.part(0)).await.unwrap();
    assert_eq!((s.kind, s.mode, s.size), (FileKind::Symlink, 0o777, 11));
    let t = k.svc.readlink(Readlink { partition: k.part(0), inode: s.inode }).await.unwrap();
    assert_eq!(&t.target[..], b"../target/\xff");
    let f = k.create(ROOT, "f").await.unwrap();
    assert!(matches!(
        k.svc.readlink(Readlink { partition: k.part(0), inode: f.inode }).await,
        Err(ErrorCode::InvalidArgument(_))
    ));
    assert_eq!(k.symlink(ROOT, "long", &vec![b'a'; MAX_SYMLINK_LEN + 1], k.part(0)).await, Err(ErrorCode::NameTooLong));
    k.symlink(ROOT, "max", &vec![b'a'; MAX_SYMLINK_LEN], k.part(0)).await.unwrap();
    assert_eq!(k.symlink(ROOT, "empty", b"", k.part(0)).await, Err(ErrorCode::NotFound));
}

#[tokio::test]
async fn readdir_pages_are_stable_under_concurrent_changes() {
    let k = Kit::one().await;
    let d = k.mkdir(ROOT, "d").await.unwrap();
    for i in 0..50 {
        k.create(d.inode, &format!("f{i:03}")).await.unwrap();
    }
    let first =
        k.svc.read_dir(ReadDir { partition: k.part(0), inode: d.inode, cursor: None, limit: 20 }).await.unwrap();
    assert_eq!(first.entries.len(), 20);
    assert_eq!(first.next.as_ref().unwrap().to_string(), "f019");
    // Between pages: remove seen and unseen entries, add some before and after the cursor.
    k.unlink(d.inode, "f005", root()).await.unwrap();
    k.unlink(d.inode, "f030", root()).await.unwrap();
    k.create(d.inode, "a-before").await.unwrap();
    k.create(d.inode, "z-after").await.unwrap();
    let mut rest = Vec::new();
    let mut cursor = first.next.clone();
    while let Some(c) = cursor {
        let page =
            k.svc.read_dir(ReadDir { partition: k.part(0), inode: d.inode, cursor: Some(c), limit: 7 }).await.unwrap();
        rest.extend(page.entries.into_iter().map(|e| e.name.to_string()));
        cursor = page.next;
    }
    let want: Vec<String> =
        (20..50).filter(|i| *i != 30).map(|i| format!("f{i:03}")).chain(["z-after".to_string()]).collect();
    assert_eq!(rest, want, "every entry present throughout is listed once, after the cursor");
    // A limit of 0 still makes progress; readdir of a file is NotDir.
    let one = k.svc.read_dir(ReadDir { partition: k.part(0), inode: d.inode, cursor: None, limit: 0 }).await.unwrap();
    assert_eq!(one.entries.len(), 1);
    let f = k.ino(d.inode, "f000").await.unwrap();
    assert_eq!(
        k.svc.read_dir(ReadDir { partition: k.part(0), inode: f, cursor: None, limit: 5 }).await,
        Err(ErrorCode::NotDir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_100_000_entries_lists_fast_and_completely() {
    let k = Kit::one().await;
    let d = k.mkdir(ROOT, "big").await.unwrap();
    let start = std::time::Instant::now();
    for chunk in 0..100 {
        let names: Vec<String> = (0..1000).map(|i| format!("{:06}", chunk * 1000 + i)).collect();
        let batch = names.iter().map(|name| k.create(d.inode, name));
        for r in futures_util::future::join_all(batch).await {
            r.unwrap();
        }
    }
    eprintln!("100,000 creates in {:?}", start.elapsed());
    // A page from the start, from the middle and from the end costs the same: a range scan.
    for cursor in [None, Some("049999"), Some("099990")] {
        let start = std::time::Instant::now();
        let r = k
            .svc
            .read_dir(ReadDir { partition: k.part(0), inode: d.inode, cursor: cursor.map(Into::into), limit: 1000 })
            .await
            .unwrap();
        assert!(!r.entries.is_empty());
        assert!(start.elapsed() < std::time::Duration::from_millis(500), "a page took {:?}", start.elapsed());
    }
    let start = std::time::Instant::now();
    let names = k.names(d.inode, 4096).await.unwrap();
    eprintln!("listing 100,000 entries took {:?}", start.elapsed());
    assert_eq!(names.len(), 100_000);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "listing took {:?}", start.elapsed());
    assert_eq!(k.getattr(d.inode).await.unwrap().nlink, 2);
    assert!(k.lookup(d.inode, "077777").await.is_ok());
}
