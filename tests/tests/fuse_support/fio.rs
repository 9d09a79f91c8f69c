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
