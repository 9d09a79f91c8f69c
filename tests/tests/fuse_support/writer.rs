//! A checksummed writer for kill tests: a thread that writes files of a known pseudo-random content through
//! the mount (create, 256 KiB writes, an fsync every MiB, close) until told to stop, timing every operation,
//! so a test can ask how long the longest one took while an instance was down, and whether any completed.
//! The content is a function of (file, offset), so verifying needs nothing but the file count.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const FILE_SIZE: usize = 4 << 20;
const CHUNK: usize = 256 << 10;
const FSYNC_EVERY: usize = 1 << 20;
/// Pause between chunks: caps the rate near 5 MB/s, so a minute of writing stays quick to verify.
const PACE: Duration = Duration::from_millis(50);

/// One completed operation: when it ended and how long it took.
#[derive(Clone, Copy, Debug)]
struct Op {
    end: Instant,
    took: Duration,
}

#[derive(Default)]
struct Shared {
    ops: Mutex<Vec<Op>>,
    stop: AtomicBool,
    /// Bytes written and fsynced so far.
    synced: AtomicU64,
    /// When the operation in flight started (`None` between operations).
    in_flight: Mutex<Option<Instant>>,
}

pub struct Writer {
    dir: PathBuf,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<std::io::Result<usize>>>,
}

/// Byte `i` of file `file`: splitmix64 of its 8-byte word, so neighbouring files and offsets differ.
fn pattern(file: usize, offset: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let at = offset + i;
        let mut z = ((file as u64) << 40 ^ (at / 8) as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        *b = (z >> ((at % 8) * 8)) as u8;
    }
}

fn name(dir: &Path, file: usize) -> PathBuf {
    dir.join(format!("w{file:05}"))
}

impl Writer {
    pub fn start(dir: &Path) -> Writer {
        std::fs::create_dir_all(dir).expect("create the writer's dir");
        let shared = Arc::new(Shared::default());
        let (d, s) = (dir.to_path_buf(), shared.clone());
        let thread = std::thread::Builder::new().name("verified-writer".into()).spawn(move || run(&d, &s)).unwrap();
        Writer { dir: dir.to_path_buf(), shared, thread: Some(thread) }
    }

    /// Bytes written and fsynced so far.
    pub fn synced(&self) -> u64 {
        self.shared.synced.load(Ordering::Relaxed)
    }

    /// The longest operation that ended in `[from, to]` (or is still in flight since before `to`), and how many
    /// ended in that window.
    pub fn stall(&self, from: Instant, to: Instant) -> (Duration, usize) {
        let ops = self.shared.ops.lock().unwrap();
        let window: Vec<&Op> = ops.iter().filter(|o| o.end >= from && o.end <= to).collect();
        let mut longest = window.iter().map(|o| o.took).max().unwrap_or_default();
        if let Some(started) = *self.shared.in_flight.lock().unwrap() {
            longest = longest.max(to.saturating_duration_since(started));
        }
        (longest, window.len())
    }

    /// Stops after the current file, and returns how many complete files were written; panics on a write error.
    pub fn finish(mut self) -> usize {
        self.shared.stop.store(true, Ordering::Relaxed);
        let r = self.thread.take().unwrap().join().expect("writer thread panicked");
        r.unwrap_or_else(|e| panic!("the writer failed: {e}"))
    }

    /// Reads back files `0..files` under `dir` and compares them with the pattern; panics at the first mismatch.
    pub fn verify(dir: &Path, files: usize) -> u64 {
        let (mut want, mut got) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let mut total = 0;
        for file in 0..files {
            let path = name(dir, file);
            let mut f = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let len = f.metadata().unwrap().len();
            assert_eq!(len, FILE_SIZE as u64, "{} has the wrong size", path.display());
            for offset in (0..FILE_SIZE).step_by(CHUNK) {
                f.read_exact(&mut got).unwrap_or_else(|e| panic!("{} at {offset}: {e}", path.display()));
                pattern(file, offset, &mut want);
                if got != want {
                    let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
                    panic!("{}: wrong data at byte {}", path.display(), offset + at);
                }
            }
            total += len;
        }
        total
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn timed<T>(s: &Shared, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let start = Instant::now();
    *s.in_flight.lock().unwrap() = Some(start);
    let r = f();
    *s.in_flight.lock().unwrap() = None;
    s.ops.lock().unwrap().push(Op { end: Instant::now(), took: start.elapsed() });
    r
}

fn run(dir: &Path, s: &Shared) -> std::io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let mut file = 0;
    while !s.stop.load(Ordering::Relaxed) {
        let path = name(dir, file);
        let mut f = timed(s, || File::create(&path))?;
        for offset in (0..FILE_SIZE).step_by(CHUNK) {
            pattern(file, offset, &mut buf);
            timed(s, || f.write_all(&buf))?;
            if (offset + CHUNK).is_multiple_of(FSYNC_EVERY) {
                timed(s, || f.sync_all())?;
                s.synced.fetch_add(FSYNC_EVERY as u64, Ordering::Relaxed);
            }
            std::thread::sleep(PACE);
        }
        timed(s, || {
            drop(f);
            Ok(())
        })?;
        file += 1;
    }
    Ok(file)
}
