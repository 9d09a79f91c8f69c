//! fio with `verify=crc32c` on a mount: sequential 1 MiB and random 4 KiB writes, several jobs each,
//! every block checked when read back. A missing fio is a failure (scripts/setup.sh installs it).

use std::path::Path;
use std::process::Command;

/// Writes the job file and runs it; `verify_only` re-reads and checks what an earlier run wrote.
pub fn run(dir: &Path, mnt: &Path, verify_only: bool) {
    let job = dir.join(if verify_only { "verify-only.fio" } else { "verify.fio" });
    let data = mnt.join("fio");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        &job,
        format!(
            "[global]\nioengine=psync\ndirect=0\nfallocate=none\ndirectory={}\nverify=crc32c\nverify_fatal=1\n\
             verify_dump=0\nverify_state_save=0\nverify_only={}\nrandrepeat=1\nrandseed=20240501\nend_fsync=1\n\
             [seq-1m]\nrw=write\nbs=1M\nsize=32m\nnumjobs=3\n\
             [rand-4k]\nstonewall\nrw=randwrite\nbs=4k\nsize=8m\nnumjobs=3\n\
             [rand-mixed]\nstonewall\nrw=randwrite\nbsrange=512-256k\nsize=16m\nnumjobs=2\n",
            data.display(),
            u8::from(verify_only),
        ),
    )
    .unwrap();
    let out = Command::new("fio")
        .arg(&job)
        .output()
        .unwrap_or_else(|e| panic!("cannot run fio ({e}): install it (scripts/setup.sh does)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fio verify failed ({}):\n{text}", out.status);
    assert!(!text.contains("verify:") || !text.contains("bad"), "fio reported bad blocks:\n{text}");
    assert!(text.contains("seq-1m") && text.contains("rand-4k"), "fio ran the jobs:\n{text}");
}

/// A verified fio write running in the background (see [`start_timed`]).
pub struct TimedFio {
    child: std::process::Child,
    out: std::path::PathBuf,
    pub data: std::path::PathBuf,
}

/// What a timed run measured.
#[derive(Debug)]
pub struct Timed {
    /// The longest a single write (or the final fsync) took: the stall the writer saw.
    pub max_latency: std::time::Duration,
    pub bytes_written: u64,
}

/// Starts fio `verify=crc32c` (sequential 1 MiB writes, 2 jobs of `mib_per_job` MiB; random 4 KiB writes,
/// 2 jobs of 4 MiB) in the background, with JSON output; or, `verify_only`, re-reads what it wrote.
pub fn start_timed(dir: &Path, mnt: &Path, mib_per_job: u64, verify_only: bool) -> TimedFio {
    let name = if verify_only { "timed-verify-only" } else { "timed" };
    let job = dir.join(format!("{name}.fio"));
    let data = mnt.join("fio-timed");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        &job,
        format!(
            "[global]\nioengine=psync\ndirect=0\nfallocate=none\ndirectory={}\nverify=crc32c\nverify_fatal=1\n\
             verify_dump=0\nverify_state_save=0\nverify_only={}\nrandrepeat=1\nrandseed=20240502\nend_fsync=1\n\
             [seq-1m]\nrw=write\nbs=1M\nsize={mib_per_job}m\nnumjobs=2\n\
             [rand-4k]\nstonewall\nrw=randwrite\nbs=4k\nsize=4m\nnumjobs=2\n",
            data.display(),
            u8::from(verify_only),
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}.json"));
    let child = Command::new("fio")
        .arg("--output-format=json")
        .arg(format!("--output={}", out.display()))
        .arg(&job)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run fio ({e}): install it (scripts/setup.sh does)"));
    TimedFio { child, out, data }
}

impl TimedFio {
    /// Bytes in the files fio has written so far.
    pub fn written(&self) -> u64 {
        std::fs::read_dir(&self.data)
            .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// Waits for fio; fails the test unless every job succeeded and verified.
    pub fn finish(self) -> Timed {
        let out = self.child.wait_with_output().expect("wait for fio");
        let json = std::fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "fio failed ({}):\n{stderr}\n{json}", out.status);
        // fio may print warnings before the JSON document.
        let start = json.find('{').unwrap_or_else(|| panic!("no JSON from fio:\n{json}\n{stderr}"));
        let v: serde_json::Value = serde_json::from_str(&json[start..]).expect("fio JSON");
        let jobs = v["jobs"].as_array().expect("fio jobs");
        assert!(!jobs.is_empty(), "fio ran no job:\n{json}");
        let mut max_ns = 0u64;
        let mut bytes = 0u64;
        for j in jobs {
            assert_eq!(j["error"].as_u64(), Some(0), "fio job failed: {j}");
            for section in ["write", "sync"] {
                max_ns = max_ns.max(j[section]["lat_ns"]["max"].as_u64().unwrap_or(0));
            }
            bytes += j["write"]["io_bytes"].as_u64().unwrap_or(0);
        }
        Timed { max_latency: std::time::Duration::from_nanos(max_ns), bytes_written: bytes }
    }
}
