//! `ferrum dev`, as the README's main command and the benchmark target drive it: two clusters (3
//! masters, 3 metanodes, 3 datanodes each) side by side on one host with different dirs and base ports,
//! each mounted; `ps --json`; an instance SIGKILLed and started again while the data stays readable;
//! `down --purge` unmounts and removes everything.

use ferrum_tests::harness::dev::{is_ferrum_mount, DevOptions};
use ferrum_tests::harness::{DevCluster, TestDir};

#[test]
fn two_dev_clusters_side_by_side_with_stop_start_and_down() {
    let root = TestDir::new();
    let up = |name: &str| {
        let dir = root.sub(name);
        DevCluster::up_with(&dir, DevOptions { volume: name.to_string(), ..Default::default() })
    };
    let (a, b) = (up("a"), up("b"));
    assert_ne!(a.base_port(), b.base_port());

    for c in [&a, &b] {
        let ps = c.ps();
        for role in ["master", "metanode", "datanode"] {
            assert_eq!(ps.of_role(role).filter(|i| i.running()).count(), 3, "3 running {role}s in {ps:?}");
        }
        let mut rpcs: Vec<&str> = ps.instances.iter().map(|i| i.rpc.as_str()).collect();
        rpcs.sort();
        rpcs.dedup();
        assert_eq!(rpcs.len(), 9, "distinct ports");
        assert!(is_ferrum_mount(c.mnt()), "{} is mounted", c.mnt().display());
    }
    // The two volumes are independent filesystems.
    std::fs::write(a.mnt().join("which"), b"cluster a").unwrap();
    std::fs::write(b.mnt().join("which"), b"cluster b").unwrap();
    assert_eq!(std::fs::read(a.mnt().join("which")).unwrap(), b"cluster a");
    assert_eq!(std::fs::read(b.mnt().join("which")).unwrap(), b"cluster b");

    // Kill a datanode of cluster a: the volume keeps working; it rejoins on its existing data.
    a.stop("data1", true);
    let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(a.mnt().join("while-down"), &payload).unwrap();
    a.start("data1");
    assert_eq!(a.ps().running(), 9);
    a.wait_rejoined("data1");
    assert!(std::fs::read(a.mnt().join("while-down")).unwrap() == payload, "data written while data1 was down");

    // down --purge: unmounted, stopped, removed (checked by `down`); the other cluster is untouched.
    let a_mnt = a.mnt().to_path_buf();
    a.down();
    assert!(!is_ferrum_mount(&a_mnt), "a is unmounted");
    assert_eq!(std::fs::read(b.mnt().join("which")).unwrap(), b"cluster b");
    b.down();
}
