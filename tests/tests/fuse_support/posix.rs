//! Every file operation a POSIX user expects, through the kernel, with plain `std::fs` calls (and libc
//! where std has no wrapper). Each check names what it exercises, so a failure says which operation
//! broke.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: std::io::Result<T>, want: i32, what: &str) {
    match r {
        Err(e) => assert_eq!(e.raw_os_error(), Some(want), "{what}: {e}"),
        Ok(v) => panic!("{what}: expected errno {want}, got Ok({v:?})"),
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs every check in its own directory under `mnt`.
pub fn exercise_everything(mnt: &Path) {
    let root = mnt.join("posix");
    fs::create_dir(&root).expect("mkdir posix");
    files_and_data(&root.join("data"));
    big_sequential_and_random(&root.join("big"));
    attributes(&root.join("attrs"));
    directories(&root.join("dirs"));
    links(&root.join("links"));
    renames(&root.join("renames"));
    special_files(&root.join("special"));
    xattrs(&root.join("xattrs"));
    space(mnt, &root.join("space"));
    durability_calls(&root.join("sync"));
    errors(&root.join("errors"));
    permissions(&root.join("perms"));
    concurrency(&root.join("conc"));
    fs::remove_dir_all(&root).expect("remove_dir_all posix");
    assert!(!root.exists());
}

fn files_and_data(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("hello");
    fs::write(&f, b"hello, world\n").expect("create+write");
    assert_eq!(fs::read(&f).unwrap(), b"hello, world\n", "read back");
    assert_eq!(fs::metadata(&f).unwrap().len(), 13);
    // Append.
    OpenOptions::new().append(true).open(&f).unwrap().write_all(b"more\n").unwrap();
    assert_eq!(fs::read(&f).unwrap(), b"hello, world\nmore\n", "append");
    // Overwrite in the middle through a read-write handle, read through the same handle.
    let mut h = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    h.seek(SeekFrom::Start(7)).unwrap();
    h.write_all(b"WORLD").unwrap();
    h.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    h.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello, WORLD\nmore\n", "overwrite + read on one handle");
    drop(h);
    // Two handles see each other's writes.
    let mut w = OpenOptions::new().write(true).open(&f).unwrap();
    let mut r = File::open(&f).unwrap();
    w.write_all(b"HELLO").unwrap();
    let mut buf = [0u8; 5];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HELLO", "a second descriptor sees unflushed writes");
    drop((w, r));
    // Truncate on open, write past the end leaving a hole.
    let mut h = OpenOptions::new().write(true).truncate(true).open(&f).unwrap();
    h.seek(SeekFrom::Start(100_000)).unwrap();
    h.write_all(b"tail").unwrap();
    drop(h);
    let all = fs::read(&f).unwrap();
    assert_eq!(all.len(), 100_004);
    assert!(all[..100_000].iter().all(|b| *b == 0), "a hole reads as zeros");
    assert_eq!(&all[100_000..], b"tail");
    // Empty file.
    let e = d.join("empty");
    File::create(&e).unwrap();
    assert_eq!(fs::read(&e).unwrap().len(), 0);
}

fn big_sequential_and_random(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("data");
    let bytes = pattern(24 << 20, 1);
    // 4 KiB writes, as small-write applications do.
    {
        let mut h = File::create(&f).unwrap();
        for chunk in bytes.chunks(4096) {
            h.write_all(chunk).unwrap();
        }
    }
    assert_eq!(fs::metadata(&f).unwrap().len(), bytes.len() as u64);
    // Sequential read in odd-sized chunks (read-ahead path).
    let mut h = File::open(&f).unwrap();
    let mut got = Vec::with_capacity(bytes.len());
    let mut buf = vec![0u8; 300_001];
    loop {
        let n = h.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == bytes, "24 MiB sequential read matches");
    // Random overwrites then random reads against a model.
    let mut model = bytes;
    let mut h = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    let mut x = 99u64;
    for i in 0..300 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let off = (x >> 20) as usize % (model.len() - 70_000);
        let len = 1 + (x >> 50) as usize % 65_536;
        let p = pattern(len, i);
        h.seek(SeekFrom::Start(off as u64)).unwrap();
        h.write_all(&p).unwrap();
        model[off..off + len].copy_from_slice(&p);
    }
    h.sync_all().unwrap();
    for _ in 0..100 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let off = (x >> 20) as usize % (model.len() - 70_000);
        let mut buf = vec![0u8; 65_536];
        h.seek(SeekFrom::Start(off as u64)).unwrap();
        h.read_exact(&mut buf).unwrap();
        assert!(buf[..] == model[off..off + 65_536], "random read at {off}");
    }
    drop(h);
    assert!(fs::read(&f).unwrap() == model, "whole file after random overwrites");
}

fn attributes(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("f");
    fs::write(&f, b"x").unwrap();
    // chmod.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640, "chmod");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o4755, "chmod with setuid");
    // chown.
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678), "chown");
    // truncate down and up.
    fs::write(&f, pattern(10_000, 3)).unwrap();
    let h = OpenOptions::new().write(true).open(&f).unwrap();
    h.set_len(100).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().len(), 100, "ftruncate down");
    h.set_len(5000).unwrap();
    drop(h);
    let data = fs::read(&f).unwrap();
    assert_eq!(data.len(), 5000);
    assert_eq!(&data[..100], &pattern(10_000, 3)[..100]);
    assert!(data[100..].iter().all(|b| *b == 0), "ftruncate up reads zeros");
    // truncate(2) by path.
    let p = c(&f);
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::truncate(p.as_ptr(), 7) }, 0, "truncate by path: errno {}", errno());
    assert_eq!(fs::metadata(&f).unwrap().len(), 7);
    // utimens: explicit times, then "now".
    let times = [
        libc::timespec { tv_sec: 1_000_000_000, tv_nsec: 123_456_789 },
        libc::timespec { tv_sec: 1_100_000_000, tv_nsec: 987_654_321 },
    ];
    // SAFETY: valid path and times array.
    assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) }, 0);
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789), "atime set");
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_100_000_000, 987_654_321), "mtime set");
    let now = [
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
    ];
    // SAFETY: as above.
    assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), now.as_ptr(), 0) }, 0);
    assert!(fs::metadata(&f).unwrap().mtime() > 1_100_000_000, "utimens now");
    // Writing moves mtime; a write through a handle after futimens does not undo the set time on close.
    let mut h = OpenOptions::new().write(true).open(&f).unwrap();
    h.write_all(b"abc").unwrap();
    h.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_200_000_000)).unwrap();
    drop(h);
    assert_eq!(fs::metadata(&f).unwrap().mtime(), 1_200_000_000, "futimens after buffered writes survives close");
    // ctime moves on chmod.
    let before = fs::metadata(&f).unwrap().ctime_nsec() + fs::metadata(&f).unwrap().ctime() * 1_000_000_000;
    std::thread::sleep(std::time::Duration::from_millis(10));
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    let m = fs::metadata(&f).unwrap();
    assert!(m.ctime() * 1_000_000_000 + m.ctime_nsec() > before, "ctime moves on chmod");
}

fn directories(d: &Path) {
    fs::create_dir(d).unwrap();
    fs::create_dir_all(d.join("a/b/c/d")).expect("nested mkdir");
    assert!(d.join("a/b/c/d").is_dir());
    assert_eq!(fs::metadata(d.join("a")).unwrap().nlink(), 3, "dir nlink = 2 + subdirs");
    // A large directory: listing pages and resumes through many readdir calls.
    let big = d.join("many");
    fs::create_dir(&big).unwrap();
    for i in 0..1500 {
        File::create(big.join(format!("file-{i:05}-{}", "x".repeat(i % 50)))).unwrap();
    }
    let mut names: Vec<String> =
        fs::read_dir(&big).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 1500, "every entry listed exactly once");
    names.dedup();
    assert_eq!(names.len(), 1500);
    for e in fs::read_dir(&big).unwrap().take(3) {
        let e = e.unwrap();
        assert!(e.file_type().unwrap().is_file(), "readdir carries the type");
    }
    assert_err(fs::remove_dir(&big), libc::ENOTEMPTY, "rmdir non-empty");
    fs::remove_dir_all(&big).unwrap();
    assert!(!big.exists());
    fs::remove_dir(d.join("a/b/c/d")).unwrap();
    assert_eq!(fs::metadata(d.join("a/b/c")).unwrap().nlink(), 2);
    // . and .. are listed by getdents.
    let dir = c(&d.join("a"));
    // SAFETY: valid path; the stream is closed below.
    let dp = unsafe { libc::opendir(dir.as_ptr()) };
    assert!(!dp.is_null());
    let mut seen = Vec::new();
    loop {
        // SAFETY: dp is an open stream.
        let ent = unsafe { libc::readdir(dp) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated.
        seen.push(unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_string_lossy().into_owned());
    }
    // SAFETY: dp is open.
    unsafe { libc::closedir(dp) };
    seen.sort();
    assert_eq!(seen, vec![".", "..", "b"]);
}

fn links(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("target");
    fs::write(&f, b"linked").unwrap();
    // Hard link: same inode, nlink 2, survives the original's removal.
    fs::hard_link(&f, d.join("hard")).unwrap();
    let (a, b) = (fs::metadata(&f).unwrap(), fs::metadata(d.join("hard")).unwrap());
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2, "hard link count");
    fs::remove_file(&f).unwrap();
    assert_eq!(fs::metadata(d.join("hard")).unwrap().nlink(), 1);
    assert_eq!(fs::read(d.join("hard")).unwrap(), b"linked");
    // Symlinks: relative, absolute, dangling.
    std::os::unix::fs::symlink("hard", d.join("rel")).unwrap();
    assert_eq!(fs::read_link(d.join("rel")).unwrap(), Path::new("hard"));
    assert_eq!(fs::read(d.join("rel")).unwrap(), b"linked", "follow a symlink");
    assert!(fs::symlink_metadata(d.join("rel")).unwrap().file_type().is_symlink());
    std::os::unix::fs::symlink(d.join("hard"), d.join("abs")).unwrap();
    assert_eq!(fs::read(d.join("abs")).unwrap(), b"linked");
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    assert_err(fs::read(d.join("dangling")), libc::ENOENT, "dangling symlink");
    let long = "x/".repeat(2000);
    std::os::unix::fs::symlink(&long, d.join("long")).unwrap();
    assert_eq!(fs::read_link(d.join("long")).unwrap().as_os_str().len(), 4000, "4000-byte symlink target");
    assert_err(fs::hard_link(d, d.join("dirlink")), libc::EPERM, "hard link to a directory");
    // Unlinked while open: still readable and writable through the descriptor.
    let tmp = d.join("tmp");
    fs::write(&tmp, b"open").unwrap();
    let mut h = OpenOptions::new().read(true).write(true).open(&tmp).unwrap();
    fs::remove_file(&tmp).unwrap();
    assert!(!tmp.exists());
    h.seek(SeekFrom::End(0)).unwrap();
    h.write_all(b"-still").unwrap();
    h.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    h.read_to_string(&mut s).unwrap();
    assert_eq!(s, "open-still", "unlinked file usable until closed");
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> std::io::Result<()> {
    let (a, b) = (c(from), c(to));
    // SAFETY: valid paths.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn renames(d: &Path) {
    fs::create_dir(d).unwrap();
    fs::write(d.join("a"), b"A").unwrap();
    fs::write(d.join("b"), b"B").unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    // Plain rename across directories.
    fs::rename(d.join("a"), d.join("sub/a2")).unwrap();
    assert!(!d.join("a").exists());
    assert_eq!(fs::read(d.join("sub/a2")).unwrap(), b"A");
    // Replace an existing file.
    fs::rename(d.join("sub/a2"), d.join("b")).unwrap();
    assert_eq!(fs::read(d.join("b")).unwrap(), b"A", "rename replaces the target");
    // RENAME_NOREPLACE and RENAME_EXCHANGE.
    fs::write(d.join("c"), b"C").unwrap();
    assert_err(renameat2(&d.join("b"), &d.join("c"), libc::RENAME_NOREPLACE), libc::EEXIST, "RENAME_NOREPLACE");
    renameat2(&d.join("b"), &d.join("c"), libc::RENAME_EXCHANGE).expect("RENAME_EXCHANGE");
    assert_eq!(fs::read(d.join("b")).unwrap(), b"C");
    assert_eq!(fs::read(d.join("c")).unwrap(), b"A");
    renameat2(&d.join("c"), &d.join("new"), libc::RENAME_NOREPLACE).expect("NOREPLACE to a free name");
    // Directories: move, replace an empty one, refuse non-empty and cycles.
    fs::create_dir_all(d.join("x/y")).unwrap();
    fs::create_dir(d.join("empty")).unwrap();
    fs::rename(d.join("x"), d.join("empty")).expect("dir over empty dir");
    assert!(d.join("empty/y").is_dir());
    fs::create_dir(d.join("full")).unwrap();
    fs::write(d.join("full/f"), b"").unwrap();
    assert_err(fs::rename(d.join("empty"), d.join("full")), libc::ENOTEMPTY, "dir over non-empty dir");
    assert_err(fs::rename(d.join("empty"), d.join("empty/y/inside")), libc::EINVAL, "dir into itself");
    assert_err(fs::rename(d.join("empty"), d.join("new")), libc::ENOTDIR, "dir over file");
    assert_err(fs::rename(d.join("new"), d.join("full")), libc::EISDIR, "file over dir");
    assert_eq!(fs::metadata(d).unwrap().nlink(), 5, "parent nlink after dir moves");
}

fn special_files(d: &Path) {
    fs::create_dir(d).unwrap();
    let fifo = c(&d.join("fifo"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo: errno {}", errno());
    assert!(fs::metadata(d.join("fifo")).unwrap().file_type().is_fifo());
    let dev = c(&d.join("null"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) }, 0, "mknod chr");
    let m = fs::metadata(d.join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), libc::makedev(1, 3));
    let sock = std::os::unix::net::UnixListener::bind(d.join("sock")).expect("bind a unix socket (mknod S_IFSOCK)");
    assert!(fs::metadata(d.join("sock")).unwrap().file_type().is_socket());
    drop(sock);
    let reg = c(&d.join("reg"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mknod(reg.as_ptr(), libc::S_IFREG | 0o644, 0) }, 0, "mknod regular");
    assert!(fs::metadata(d.join("reg")).unwrap().is_file());
}

fn xattrs(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("f");
    fs::write(&f, b"").unwrap();
    let p = c(&f);
    let name = CString::new("user.color").unwrap();
    let set = |v: &[u8], flags: i32| {
        // SAFETY: valid pointers and lengths.
        let r = unsafe { libc::setxattr(p.as_ptr(), name.as_ptr(), v.as_ptr().cast(), v.len(), flags) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let get = |buf: &mut [u8]| {
        // SAFETY: valid pointers and lengths.
        let r = unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            Ok(r as usize)
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    assert_err(get(&mut [0u8; 16]), libc::ENODATA, "missing xattr");
    assert_err(set(b"red", libc::XATTR_REPLACE), libc::ENODATA, "XATTR_REPLACE of a missing one");
    set(b"blue", 0).expect("setxattr");
    assert_err(set(b"red", libc::XATTR_CREATE), libc::EEXIST, "XATTR_CREATE of an existing one");
    assert_eq!(get(&mut []).unwrap(), 4, "size query");
    assert_err(get(&mut [0u8; 2]), libc::ERANGE, "buffer too small");
    let mut buf = [0u8; 16];
    let n = get(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"blue");
    let big = vec![7u8; 60_000];
    set(&big, libc::XATTR_REPLACE).expect("large value");
    let mut buf = vec![0u8; 65_536];
    assert_eq!(get(&mut buf).unwrap(), 60_000);
    let other = CString::new("user.other").unwrap();
    // SAFETY: valid pointers.
    assert_eq!(unsafe { libc::setxattr(p.as_ptr(), other.as_ptr(), b"1".as_ptr().cast(), 1, 0) }, 0);
    let mut list = vec![0u8; 256];
    // SAFETY: valid pointers.
    let n = unsafe { libc::listxattr(p.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    assert!(n > 0, "listxattr: errno {}", errno());
    let mut names: Vec<&[u8]> = list[..n as usize].split(|b| *b == 0).filter(|s| !s.is_empty()).collect();
    names.sort();
    assert_eq!(names, vec![&b"user.color"[..], &b"user.other"[..]]);
    // SAFETY: valid pointers.
    assert_eq!(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) }, 0, "removexattr");
    assert_err(get(&mut [0u8; 16]), libc::ENODATA, "removed xattr");
    // On a directory too.
    let dp = c(d);
    // SAFETY: valid pointers.
    assert_eq!(unsafe { libc::setxattr(dp.as_ptr(), other.as_ptr(), b"d".as_ptr().cast(), 1, 0) }, 0, "dir xattr");
}

fn space(mnt: &Path, d: &Path) {
    fs::create_dir(d).unwrap();
    // statfs.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let p = c(mnt);
    // SAFETY: valid path and out-pointer.
    assert_eq!(unsafe { libc::statvfs(p.as_ptr(), &mut st) }, 0, "statvfs");
    assert!(st.f_blocks > 0 && st.f_bfree <= st.f_blocks && st.f_bsize > 0, "statvfs numbers");
    assert_eq!(st.f_namemax, 255);
    // fallocate: grow, keep size, punch a hole; lseek SEEK_DATA/SEEK_HOLE.
    let f = d.join("sparse");
    let mut h = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&f).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&h);
    // SAFETY: valid descriptor.
    assert_eq!(unsafe { libc::fallocate(fd, 0, 0, 1 << 20) }, 0, "fallocate: errno {}", errno());
    assert_eq!(fs::metadata(&f).unwrap().len(), 1 << 20, "fallocate grows the file");
    // SAFETY: valid descriptor.
    assert_eq!(unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, 2 << 20) }, 0);
    assert_eq!(fs::metadata(&f).unwrap().len(), 1 << 20, "KEEP_SIZE keeps the size");
    h.seek(SeekFrom::Start(256 << 10)).unwrap();
    h.write_all(&[9u8; 512 << 10]).unwrap();
    h.sync_all().unwrap();
    // SAFETY: valid descriptor.
    assert_eq!(unsafe { libc::lseek(fd, 0, libc::SEEK_DATA) }, 256 << 10, "SEEK_DATA");
    // SAFETY: valid descriptor.
    assert_eq!(unsafe { libc::lseek(fd, 256 << 10, libc::SEEK_HOLE) }, 768 << 10, "SEEK_HOLE");
    // SAFETY: valid descriptor.
    let punch = unsafe { libc::fallocate(fd, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 300 << 10, 4096) };
    assert_eq!(punch, 0, "punch hole: errno {}", errno());
    let mut buf = vec![0u8; 8192];
    h.seek(SeekFrom::Start((300 << 10) - 4096)).unwrap();
    h.read_exact(&mut buf).unwrap();
    assert!(buf[..4096].iter().all(|b| *b == 9) && buf[4096..].iter().all(|b| *b == 0), "punched range reads zeros");
    assert_eq!(fs::metadata(&f).unwrap().len(), 1 << 20, "punching keeps the size");
}

fn durability_calls(d: &Path) {
    fs::create_dir(d).unwrap();
    let f = d.join("f");
    let mut h = File::create(&f).unwrap();
    h.write_all(&pattern(100_000, 5)).unwrap();
    h.sync_data().expect("fdatasync");
    h.sync_all().expect("fsync");
    drop(h);
    let mut h = OpenOptions::new().write(true).custom_flags(libc::O_SYNC).open(&f).unwrap();
    h.write_all(b"synchronous").expect("O_SYNC write");
    drop(h);
    assert_eq!(&fs::read(&f).unwrap()[..11], b"synchronous");
    File::open(d).unwrap().sync_all().expect("fsync a directory");
}

fn errors(d: &Path) {
    fs::create_dir(d).unwrap();
    fs::write(d.join("file"), b"").unwrap();
    assert_err(File::open(d.join("missing")), libc::ENOENT, "open missing");
    assert_err(
        OpenOptions::new().write(true).create_new(true).open(d.join("file")),
        libc::EEXIST,
        "O_EXCL on existing",
    );
    assert_err(fs::create_dir(d.join("file")), libc::EEXIST, "mkdir over a file");
    assert_err(OpenOptions::new().write(true).open(d), libc::EISDIR, "open a dir for writing");
    assert_err(File::open(d.join("file/x")), libc::ENOTDIR, "path through a file");
    assert_err(fs::remove_dir(d.join("file")), libc::ENOTDIR, "rmdir a file");
    assert_err(fs::remove_file(d), libc::EISDIR, "unlink a dir");
    assert_err(File::create(d.join("n".repeat(256))), libc::ENAMETOOLONG, "name too long");
    File::create(d.join("n".repeat(255))).expect("255-byte name");
    assert_err(fs::read_link(d.join("file")), libc::EINVAL, "readlink of a file");
}

/// `default_permissions`: the kernel checks the stored mode against the caller; `allow_other`: other
/// users may use the mount at all.
fn permissions(d: &Path) {
    fs::create_dir(d).unwrap();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(d.join("public"), b"read me").unwrap();
    fs::set_permissions(d.join("public"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(d.join("secret"), b"no").unwrap();
    fs::set_permissions(d.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let as_nobody = |script: &str| {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script).current_dir("/");
        cmd.uid(65534).gid(65534);
        let out = cmd.output().expect("run sh as nobody");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let q = |p: &Path| format!("'{}'", p.display());
    let (ok, out) = as_nobody(&format!("cat {}", q(&d.join("public"))));
    assert!(ok && out == "read me", "another user reads a 0644 file (allow_other): {ok} {out:?}");
    assert!(!as_nobody(&format!("cat {}", q(&d.join("secret")))).0, "another user cannot read a 0600 file");
    assert!(!as_nobody(&format!("echo x >> {}", q(&d.join("public")))).0, "another user cannot write a 0644 file");
    assert!(!as_nobody(&format!("touch {}", q(&d.join("new")))).0, "another user cannot create in a 0755 dir");
    fs::set_permissions(d, fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(as_nobody(&format!("touch {}", q(&d.join("mine")))).0, "anyone creates in a 1777 dir");
    assert_eq!(fs::metadata(d.join("mine")).unwrap().uid(), 65534, "created file owned by its creator");
    assert!(!as_nobody(&format!("rm -f {}", q(&d.join("public")))).0, "sticky dir: cannot remove others' files");
    assert!(as_nobody(&format!("rm {}", q(&d.join("mine")))).0, "sticky dir: can remove own files");
}

fn concurrency(d: &Path) {
    fs::create_dir(d).unwrap();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let d = d.to_path_buf();
            std::thread::spawn(move || {
                for i in 0..20u32 {
                    let f = d.join(format!("t{t}-{i}"));
                    let data = pattern(10_000 + (i as usize) * 997, t * 100 + i);
                    fs::write(&f, &data).unwrap();
                    assert_eq!(fs::read(&f).unwrap(), data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    assert_eq!(fs::read_dir(d).unwrap().count(), 160);
}
