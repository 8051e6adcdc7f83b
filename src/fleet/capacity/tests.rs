use super::*;

const GIB: u64 = 1024 * 1024 * 1024;

/// `/proc/meminfo` head of a 16 GiB machine.
const MEMINFO_16G: &str = "MemTotal:       16777216 kB\nMemFree:         1234567 kB\n";

fn status_with_cpus(list: &str) -> String {
    format!("Name:\tvolley\nCpus_allowed:\tff\nCpus_allowed_list:\t{list}\nMems_allowed_list:\t0\n")
}

/// A Kubernetes pod on a cgroup v2 node (systemd driver), cgroup namespace off.
fn v2_pod(leaf_cpu_max: &str, pod_cpu_max: &str, memory_max: &str) -> MapCgroups {
    let pod =
        "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice";
    MapCgroups::new(Some(8))
        .with_file(
            "/proc/self/cgroup",
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcd.scope\n",
        )
        .with_file(
            "/proc/self/mountinfo",
            "22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
             25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        )
        .with_file(format!("{pod}/cri-containerd-abcd.scope/cpu.max"), leaf_cpu_max)
        .with_file(format!("{pod}/cpu.max"), pod_cpu_max)
        .with_file(format!("{pod}/cri-containerd-abcd.scope/memory.max"), memory_max)
        .with_file(format!("{pod}/memory.max"), "max\n")
        .with_file("/proc/self/status", status_with_cpus("0-7"))
        .with_file("/proc/meminfo", MEMINFO_16G)
}

#[test]
fn v2_quota_of_the_container() {
    let source = v2_pod("200000 100000\n", "max 100000\n", "1073741824\n");
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 2.0);
    assert_eq!(capacity.memory_bytes, Some(GIB));
}

#[test]
fn v2_parent_limit_caps_an_unlimited_child() {
    let source = v2_pod("max 100000\n", "150000 100000\n", "max\n");
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 1.5);
    assert_eq!(
        capacity.memory_bytes,
        Some(16 * GIB),
        "no cgroup limit: the machine's memory"
    );
}

#[test]
fn affinity_below_the_quota_wins() {
    let source = v2_pod("800000 100000\n", "max 100000\n", "max\n")
        .with_file("/proc/self/status", status_with_cpus("2-3"));
    assert_eq!(detect(&source).cpus, 2.0);
}

#[test]
fn v2_in_a_cgroup_namespace() {
    let source = MapCgroups::new(Some(16))
        .with_file("/proc/self/cgroup", "0::/\n")
        .with_file(
            "/proc/self/mountinfo",
            "1245 1234 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n",
        )
        .with_file("/sys/fs/cgroup/cpu.max", "50000 100000\n")
        .with_file("/sys/fs/cgroup/memory.max", "268435456\n");
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 0.5);
    assert_eq!(capacity.memory_bytes, Some(256 * 1024 * 1024));
}

/// Docker on a cgroup v1 host: the mount root is the container's own cgroup.
#[test]
fn v1_docker_container() {
    let source = MapCgroups::new(Some(4))
        .with_file(
            "/proc/self/cgroup",
            "12:memory:/docker/0123abcd\n\
             4:cpu,cpuacct:/docker/0123abcd\n\
             1:name=systemd:/docker/0123abcd\n",
        )
        .with_file(
            "/proc/self/mountinfo",
            "700 699 0:54 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
             701 699 0:55 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
        )
        .with_file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "150000\n")
        .with_file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
        .with_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n")
        .with_file("/proc/meminfo", MEMINFO_16G);
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 1.5);
    assert_eq!(capacity.memory_bytes, Some(512 * 1024 * 1024));
}

/// A hybrid host (v1 controllers, empty v2 `unified` mount) without limits,
/// as on a typical CI VM.
#[test]
fn hybrid_host_without_limits() {
    let source = MapCgroups::new(Some(2))
        .with_file(
            "/proc/self/cgroup",
            "9:name=systemd:/\n4:memory:/process_api/5095\n1:cpu:/\n0::/\n",
        )
        .with_file(
            "/proc/self/mountinfo",
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        )
        .with_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n")
        .with_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n")
        .with_file(
            "/sys/fs/cgroup/memory/process_api/5095/memory.limit_in_bytes",
            "9223372036854771712\n",
        )
        .with_file(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        )
        .with_file("/proc/self/status", status_with_cpus("0-1"))
        .with_file("/proc/meminfo", "MemTotal:       24684092 kB\n");
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 2.0);
    assert_eq!(capacity.memory_bytes, Some(24_684_092 * 1024));
}

#[test]
fn nothing_readable_falls_back() {
    assert_eq!(
        detect(&MapCgroups::new(Some(3))),
        Capacity {
            cpus: 3.0,
            memory_bytes: None
        }
    );
    assert_eq!(detect(&MapCgroups::new(None)).cpus, FALLBACK_CPUS);
}

#[test]
fn without_mountinfo_the_conventional_layout_is_used() {
    let source = MapCgroups::new(Some(8))
        .with_file("/proc/self/cgroup", "0::/\n")
        .with_file("/sys/fs/cgroup/cpu.max", "300000 100000\n");
    assert_eq!(detect(&source).cpus, 3.0);
}

#[test]
fn malformed_files_are_ignored() {
    let source = v2_pod("lots\n", "max 100000\n", "plenty\n");
    let capacity = detect(&source);
    assert_eq!(capacity.cpus, 8.0, "affinity still counts");
    assert_eq!(capacity.memory_bytes, Some(16 * GIB));
}

#[test]
fn cpu_max_parsing() {
    assert_eq!(parse_cpu_max("max 100000\n"), Ok(None));
    assert_eq!(parse_cpu_max("max"), Ok(None));
    assert_eq!(parse_cpu_max("200000 100000\n"), Ok(Some(2.0)));
    assert_eq!(parse_cpu_max("150000 100000"), Ok(Some(1.5)));
    assert_eq!(parse_cpu_max("5000 10000"), Ok(Some(0.5)));
    assert!(parse_cpu_max("").is_err());
    assert!(parse_cpu_max("0 100000").is_err());
    assert!(parse_cpu_max("100000 0").is_err());
    assert!(parse_cpu_max("-1 100000").is_err());
    assert!(parse_cpu_max("max x").is_err());
}

#[test]
fn cfs_parsing() {
    assert_eq!(parse_cfs("-1\n", "100000\n"), Ok(None));
    assert_eq!(parse_cfs("200000\n", "100000\n"), Ok(Some(2.0)));
    assert_eq!(parse_cfs("25000", "100000"), Ok(Some(0.25)));
    assert!(parse_cfs("0", "100000").is_err());
    assert!(parse_cfs("100000", "0").is_err());
    assert!(parse_cfs("x", "100000").is_err());
}

#[test]
fn memory_parsing() {
    assert_eq!(parse_memory_max("max\n"), Ok(None));
    assert_eq!(parse_memory_max("1073741824\n"), Ok(Some(GIB)));
    assert!(parse_memory_max("1G").is_err());
    assert_eq!(parse_v1_memory_limit("9223372036854771712\n"), Ok(None));
    assert_eq!(parse_v1_memory_limit("9223372036854775807"), Ok(None));
    assert_eq!(
        parse_v1_memory_limit("536870912\n"),
        Ok(Some(512 * 1024 * 1024))
    );
    assert!(parse_v1_memory_limit("-1").is_err());
}

#[test]
fn affinity_list_parsing() {
    assert_eq!(affinity_cpus(&status_with_cpus("0-3")), Some(4));
    assert_eq!(affinity_cpus(&status_with_cpus("0-3,8,10-11")), Some(7));
    assert_eq!(affinity_cpus(&status_with_cpus("5")), Some(1));
    assert_eq!(affinity_cpus(&status_with_cpus("3-1")), None);
    assert_eq!(affinity_cpus(&status_with_cpus("a-b")), None);
    assert_eq!(affinity_cpus(&status_with_cpus("")), None);
    assert_eq!(affinity_cpus("Name:\tvolley\n"), None);
}

#[test]
fn meminfo_parsing() {
    assert_eq!(mem_total_bytes(MEMINFO_16G), Some(16 * GIB));
    assert_eq!(mem_total_bytes("MemTotal: 12 MB\n"), None);
    assert_eq!(mem_total_bytes("MemFree: 12 kB\n"), None);
}

#[test]
fn proc_cgroup_parsing() {
    let parsed = parse_proc_cgroup("4:cpu,cpuacct:/docker/x\n0::/a:b\ngarbage\n");
    assert_eq!(
        parsed,
        vec![
            Membership {
                hierarchy: 4,
                controllers: vec!["cpu".to_owned(), "cpuacct".to_owned()],
                path: "/docker/x".to_owned(),
            },
            Membership {
                hierarchy: 0,
                controllers: vec![],
                path: "/a:b".to_owned(),
            },
        ]
    );
}

#[test]
fn mountinfo_parsing_and_unescaping() {
    let mounts = parse_mountinfo(
        "25 21 0:23 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n\
         32 31 0:29 /a\\040b /mnt/my\\040cgroup rw - cgroup cgroup rw,cpu,cpuacct\n\
         22 26 0:21 / /proc rw - proc proc rw\n\
         broken line\n",
    );
    assert_eq!(
        mounts,
        vec![
            CgroupMount {
                root: "/".to_owned(),
                mount_point: PathBuf::from("/sys/fs/cgroup"),
                controllers: None,
            },
            CgroupMount {
                root: "/a b".to_owned(),
                mount_point: PathBuf::from("/mnt/my cgroup"),
                controllers: Some(vec!["cpu".to_owned(), "cpuacct".to_owned()]),
            },
        ]
    );
    assert_eq!(unescape_mount_field("tail\\"), "tail\\");
    assert_eq!(unescape_mount_field("x\\134y"), "x\\y");
}

#[test]
fn overrides() {
    assert_eq!(parse_override("4"), Ok(4.0));
    assert_eq!(parse_override(" 1.5 "), Ok(1.5));
    for bad in ["0", "-1", "NaN", "inf", "", "four", "1e10"] {
        let error = parse_override(bad).expect_err(bad);
        assert!(error.to_string().contains("--capacity"), "{error}");
    }
    let detected = Capacity {
        cpus: 2.0,
        memory_bytes: Some(GIB),
    };
    assert_eq!(
        detected.with_cpus_override(0.5),
        Ok(Capacity {
            cpus: 0.5,
            memory_bytes: Some(GIB)
        })
    );
    assert!(detected.with_cpus_override(0.0).is_err());
}

#[test]
fn this_machine_reports_something_sane() {
    let capacity = detect(&SystemCgroups);
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    // std rounds a fractional quota down; detection keeps the fraction.
    assert!(
        capacity.cpus > 0.0 && capacity.cpus < parallelism + 1.0,
        "{capacity:?} vs {parallelism} CPUs"
    );
    if let Some(bytes) = capacity.memory_bytes {
        assert!(bytes > 1024 * 1024, "{capacity:?}");
    }
}
