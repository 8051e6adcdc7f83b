//! What this node can give: CPUs and memory available to the agent process,
//! read from cgroups and the CPU affinity mask, published as the capacity
//! weight that shares are cut by.
//!
//! CPUs are the minimum of
//! - the cgroup v2 quota (`cpu.max`: `max 100000` is unlimited, `200000 100000`
//!   is 2 CPUs) of the process's cgroup and of every ancestor,
//! - the cgroup v1 CFS quota (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, `-1`
//!   is unlimited), likewise up the hierarchy,
//! - the affinity mask (`Cpus_allowed_list` in `/proc/self/status`; when
//!   that is unreadable, [`std::thread::available_parallelism`], which
//!   respects affinity but also rounds cgroup quotas down to whole CPUs).
//!
//! Memory is the minimum of `memory.max` (v2) or `memory.limit_in_bytes`
//! (v1, where "unlimited" shows as a huge number), again up the hierarchy,
//! and the machine's `MemTotal`.
//!
//! Where the cgroup files live is taken from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`, so hybrid hosts (v1 controllers plus a v2
//! `unified` mount) and containers whose mount root is their own cgroup are
//! handled. All file access goes through [`CgroupSource`]: [`SystemCgroups`]
//! reads the real files, [`MapCgroups`] serves fixed contents for tests. The
//! parsers are pure; a malformed file is logged and ignored, never fatal.
//! An operator's `--capacity` wins over detection
//! ([`Capacity::with_cpus_override`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// v1 memory limits at or above this mean "no limit" (the kernel shows
/// `9223372036854771712`, i.e. `i64::MAX` rounded down to a page).
const V1_UNLIMITED_MEMORY: u64 = 1 << 62;
/// Used when neither cgroups nor affinity say anything.
const FALLBACK_CPUS: f64 = 1.0;

/// What this node offers to tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// CPUs available to the process, fractional under a CFS quota; always
    /// above 0. Published as the capacity weight.
    pub cpus: f64,
    /// Bytes of memory the process may use (cgroup limit capped by the
    /// machine's memory); `None` when neither could be read.
    pub memory_bytes: Option<u64>,
}

/// A refused `--capacity` value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapacityError {
    /// The override is not a usable weight.
    #[error(
        "--capacity {value:?} is not valid: expected a finite number above 0 and at most {max}, such as `4` or `1.5`"
    )]
    InvalidOverride {
        /// The value as given.
        value: String,
        /// Largest accepted weight.
        max: f64,
    },
}

impl Capacity {
    /// This capacity with the CPU weight replaced by an operator's choice.
    pub fn with_cpus_override(self, cpus: f64) -> Result<Capacity, CapacityError> {
        if cpus.is_finite() && cpus > 0.0 && cpus <= crate::fleet::keys::MAX_CAPACITY {
            Ok(Capacity { cpus, ..self })
        } else {
            Err(CapacityError::InvalidOverride {
                value: cpus.to_string(),
                max: crate::fleet::keys::MAX_CAPACITY,
            })
        }
    }
}

/// Parses a `--capacity` flag value.
pub fn parse_override(text: &str) -> Result<f64, CapacityError> {
    let invalid = || CapacityError::InvalidOverride {
        value: text.to_owned(),
        max: crate::fleet::keys::MAX_CAPACITY,
    };
    let cpus: f64 = text.trim().parse().map_err(|_| invalid())?;
    if cpus.is_finite() && cpus > 0.0 && cpus <= crate::fleet::keys::MAX_CAPACITY {
        Ok(cpus)
    } else {
        Err(invalid())
    }
}

// === CgroupSource ===

/// Where capacity detection reads from.
pub trait CgroupSource {
    /// The whole text of a small procfs/cgroupfs file; `None` when it is
    /// absent or unreadable (both are normal: not every hierarchy has every file).
    fn read(&self, path: &Path) -> Option<String>;
    /// CPUs the OS lets this process run on, used when the affinity mask
    /// cannot be read from `/proc/self/status`.
    fn available_parallelism(&self) -> Option<usize>;
}

/// The real files under `/proc` and `/sys/fs/cgroup`. Reads are blocking
/// but tiny; detection runs once at start.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemCgroups;

impl CgroupSource for SystemCgroups {
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn available_parallelism(&self) -> Option<usize> {
        std::thread::available_parallelism().ok().map(usize::from)
    }
}

/// Fixed file contents, for tests and for reproducing a machine's layout.
#[derive(Debug, Clone, Default)]
pub struct MapCgroups {
    /// Absolute path → contents.
    pub files: BTreeMap<PathBuf, String>,
    /// What [`CgroupSource::available_parallelism`] answers.
    pub parallelism: Option<usize>,
}

impl MapCgroups {
    /// An empty file system with `parallelism` CPUs.
    pub fn new(parallelism: Option<usize>) -> Self {
        MapCgroups {
            files: BTreeMap::new(),
            parallelism,
        }
    }

    /// Adds a file.
    pub fn with_file(mut self, path: impl Into<PathBuf>, contents: impl Into<String>) -> Self {
        self.files.insert(path.into(), contents.into());
        self
    }
}

impl CgroupSource for MapCgroups {
    fn read(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn available_parallelism(&self) -> Option<usize> {
        self.parallelism
    }
}

// === detection ===

const PROC_CGROUP: &str = "/proc/self/cgroup";
const PROC_MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_STATUS: &str = "/proc/self/status";
const PROC_MEMINFO: &str = "/proc/meminfo";

/// Detects this node's capacity. Never fails: whatever cannot be read or
/// parsed is skipped (malformed files are logged).
pub fn detect(source: &dyn CgroupSource) -> Capacity {
    let memberships = source
        .read(Path::new(PROC_CGROUP))
        .map(|text| parse_proc_cgroup(&text))
        .unwrap_or_default();
    let mounts = source
        .read(Path::new(PROC_MOUNTINFO))
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default();
    let v2_dir = cgroup_dir(&memberships, &mounts, None);
    let v1_cpu_dir = cgroup_dir(&memberships, &mounts, Some("cpu"));
    let v1_memory_dir = cgroup_dir(&memberships, &mounts, Some("memory"));

    let quota_v2 = v2_dir.as_ref().and_then(|(dir, top)| {
        min_up_the_tree(dir, top, |dir| {
            read_parsed(source, &dir.join("cpu.max"), parse_cpu_max)
        })
    });
    let quota_v1 = v1_cpu_dir.as_ref().and_then(|(dir, top)| {
        min_up_the_tree(dir, top, |dir| {
            let quota = source.read(&dir.join("cpu.cfs_quota_us"))?;
            let period = source.read(&dir.join("cpu.cfs_period_us"))?;
            log_malformed(&dir.join("cpu.cfs_quota_us"), parse_cfs(&quota, &period))
        })
    });
    let affinity = source
        .read(Path::new(PROC_STATUS))
        .and_then(|text| affinity_cpus(&text))
        .or_else(|| source.available_parallelism())
        .map(|cpus| cpus as f64);
    let cpus = [quota_v2, quota_v1, affinity]
        .into_iter()
        .flatten()
        .filter(|cpus| cpus.is_finite() && *cpus > 0.0)
        .reduce(f64::min)
        .unwrap_or(FALLBACK_CPUS);

    let memory_v2 = v2_dir.as_ref().and_then(|(dir, top)| {
        min_up_the_tree(dir, top, |dir| {
            read_parsed(source, &dir.join("memory.max"), parse_memory_max)
        })
    });
    let memory_v1 = v1_memory_dir.as_ref().and_then(|(dir, top)| {
        min_up_the_tree(dir, top, |dir| {
            read_parsed(
                source,
                &dir.join("memory.limit_in_bytes"),
                parse_v1_memory_limit,
            )
        })
    });
    let mem_total = source
        .read(Path::new(PROC_MEMINFO))
        .and_then(|text| mem_total_bytes(&text));
    let memory_bytes = [memory_v2, memory_v1, mem_total]
        .into_iter()
        .flatten()
        .min();

    Capacity { cpus, memory_bytes }
}

/// Reads `path` and parses it; `None` when absent, unlimited or malformed.
fn read_parsed<T>(
    source: &dyn CgroupSource,
    path: &Path,
    parse: fn(&str) -> Result<Option<T>, String>,
) -> Option<T> {
    let text = source.read(path)?;
    log_malformed(path, parse(&text))
}

fn log_malformed<T>(path: &Path, parsed: Result<Option<T>, String>) -> Option<T> {
    match parsed {
        Ok(value) => value,
        Err(problem) => {
            tracing::warn!(path = %path.display(), %problem, "ignoring malformed cgroup file");
            None
        }
    }
}

/// The smallest limit found in `dir` and its ancestors up to `top`
/// (inclusive): a parent's limit caps its children.
fn min_up_the_tree<T: PartialOrd>(
    dir: &Path,
    top: &Path,
    limit_at: impl Fn(&Path) -> Option<T>,
) -> Option<T> {
    let mut best: Option<T> = None;
    let mut current = Some(dir);
    while let Some(here) = current {
        if let Some(limit) = limit_at(here)
            && best.as_ref().is_none_or(|b| limit < *b)
        {
            best = Some(limit);
        }
        if here == top {
            break;
        }
        current = here.parent().filter(|parent| parent.starts_with(top));
    }
    best
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    /// 0 for the v2 unified hierarchy.
    hierarchy: u32,
    /// v1 controllers (`cpu`, `cpuacct`, `name=systemd`); empty for v2.
    controllers: Vec<String>,
    /// Path of the process's cgroup in that hierarchy.
    path: String,
}

fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let hierarchy = fields.next()?.parse().ok()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            Some(Membership {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// Which part of the hierarchy is mounted (`/` unless in a namespace or bind mount).
    root: String,
    /// Where it is mounted.
    mount_point: PathBuf,
    /// `None` for cgroup2; the v1 controllers otherwise.
    controllers: Option<Vec<String>>,
}

/// Parses the cgroup mounts of `/proc/self/mountinfo`:
/// `id parent major:minor root mount-point options [optional…] - fstype source super-options`.
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let root = unescape_mount_field(fields.get(3)?);
            let mount_point = PathBuf::from(unescape_mount_field(fields.get(4)?));
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let _source = after.next()?;
            let super_options = after.next().unwrap_or("");
            let controllers = match fstype {
                "cgroup2" => None,
                "cgroup" => Some(
                    super_options
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => return None,
            };
            Some(CgroupMount {
                root,
                mount_point,
                controllers,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[index], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                index += 4;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of this process's cgroup for the v2 hierarchy
/// (`controller == None`) or the v1 hierarchy holding `controller`, with
/// the mount point (the top of the walk up the tree). Falls back to the
/// conventional `/sys/fs/cgroup` layout when mountinfo is unreadable.
fn cgroup_dir(
    memberships: &[Membership],
    mounts: &[CgroupMount],
    controller: Option<&str>,
) -> Option<(PathBuf, PathBuf)> {
    let membership = memberships.iter().find(|m| match controller {
        None => m.hierarchy == 0 && m.controllers.is_empty(),
        Some(name) => m.controllers.iter().any(|c| c == name),
    })?;
    let mount = mounts
        .iter()
        .find(|mount| match (&mount.controllers, controller) {
            (None, None) => true,
            (Some(controllers), Some(name)) => controllers.iter().any(|c| c == name),
            _ => false,
        });
    let (root, mount_point) = match mount {
        Some(mount) => (mount.root.as_str(), mount.mount_point.clone()),
        None if mounts.is_empty() => {
            let conventional = match controller {
                None => PathBuf::from("/sys/fs/cgroup"),
                Some(_) => PathBuf::from("/sys/fs/cgroup").join(membership.controllers.join(",")),
            };
            ("/", conventional)
        }
        None => return None,
    };
    // In a cgroup namespace the path may lie outside the mounted root
    // (`/../..`); the mount point is then the best guess.
    let relative = membership
        .path
        .strip_prefix(root)
        .filter(|_| !membership.path.contains("/.."))
        .unwrap_or("")
        .trim_start_matches('/');
    let dir = if relative.is_empty() {
        mount_point.clone()
    } else {
        mount_point.join(relative)
    };
    Some((dir, mount_point))
}

/// cgroup v2 `cpu.max`: `$MAX $PERIOD`, `max` meaning unlimited.
fn parse_cpu_max(text: &str) -> Result<Option<f64>, String> {
    let mut fields = text.split_whitespace();
    let quota = fields.next().ok_or("empty cpu.max")?;
    let period = match fields.next() {
        Some(period) => period
            .parse::<u64>()
            .map_err(|_| format!("cpu.max period {period:?} is not an integer"))?,
        None => 100_000,
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota = quota
        .parse::<u64>()
        .map_err(|_| format!("cpu.max quota {quota:?} is neither `max` nor an integer"))?;
    if quota == 0 || period == 0 {
        return Err(format!(
            "cpu.max {:?} has a zero quota or period",
            text.trim()
        ));
    }
    Ok(Some(quota as f64 / period as f64))
}

/// cgroup v1 CFS quota and period, `-1` quota meaning unlimited.
fn parse_cfs(quota: &str, period: &str) -> Result<Option<f64>, String> {
    let quota = quota
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("cpu.cfs_quota_us {:?} is not an integer", quota.trim()))?;
    let period = period
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("cpu.cfs_period_us {:?} is not an integer", period.trim()))?;
    if quota < 0 {
        return Ok(None);
    }
    if quota == 0 || period <= 0 {
        return Err(format!(
            "CFS quota {quota} / period {period} is not a limit"
        ));
    }
    Ok(Some(quota as f64 / period as f64))
}

/// cgroup v2 `memory.max`: bytes or `max`.
fn parse_memory_max(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "max" => Ok(None),
        bytes => bytes
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("memory.max {bytes:?} is neither `max` nor an integer")),
    }
}

/// cgroup v1 `memory.limit_in_bytes`; huge values mean unlimited.
fn parse_v1_memory_limit(text: &str) -> Result<Option<u64>, String> {
    let bytes = text
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("memory.limit_in_bytes {:?} is not an integer", text.trim()))?;
    Ok((bytes < V1_UNLIMITED_MEMORY).then_some(bytes))
}

/// Number of CPUs in `Cpus_allowed_list` of `/proc/self/status` (`0-3,8,10-11`).
fn affinity_cpus(status: &str) -> Option<usize> {
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut count = 0usize;
    for range in list.split(',').filter(|r| !r.is_empty()) {
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (first.parse::<usize>().ok()?, last.parse::<usize>().ok()?),
            None => {
                let cpu = range.parse::<usize>().ok()?;
                (cpu, cpu)
            }
        };
        count = count.checked_add(last.checked_sub(first)? + 1)?;
    }
    (count > 0).then_some(count)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let mut fields = rest.split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
