//! How much of the host one build may use: CPUs, memory, processes and workspace size
//! (ARCHITECTURE.md "Limits").
//!
//! A build asks through Cloud Build's own fields: `options.machineType` names CPUs and memory (the
//! documented sizes of Cloud Build's machine types; no type is Cloud Build's default machine, 2 vCPUs and
//! 8 GiB) and `options.diskSizeGb` the disk (default 100 GB, as on Cloud Build). The server config caps
//! what any build gets (`limits:`, and `sandbox.limits:` for untrusted builds); a request above a cap is
//! granted the cap, with a warning in the record. Each step container gets the CPUs, memory and
//! processes; the workspace size bounds the build's whole work directory (checkout, scripts, the
//! sandbox's volumes).
//!
//! Pure: sizes and machine types in, limits out.

use serde::{Deserialize, Serialize};

const GIB: u64 = 1 << 30;

/// Processes (threads included) per step container. Cloud Build sets none; this one stops a fork bomb
/// long before it takes the host's pid space, and is far above what real builds use.
pub const DEFAULT_PIDS: i64 = 4096;

/// Cloud Build's default disk (`diskSizeGb` unset).
pub const DEFAULT_DISK_GB: u64 = 100;

/// Limits of one build. `None` is "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Bytes of memory per step container (swap included: none beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Bytes of the build's work directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<u64>,
}

/// A machine type's CPUs and memory (GiB), as Cloud Build documents them; `None` for an unknown name.
pub fn machine(machine_type: &str) -> Option<(f64, u64)> {
    let (cpus, gib_per_cpu_tenths) = match machine_type {
        "UNSPECIFIED" | "E2_STANDARD_2" => return Some((2.0, 8 * GIB)),
        "E2_MEDIUM" => return Some((1.0, 4 * GIB)),
        // The N1 types have 0.9 GiB per CPU.
        "N1_HIGHCPU_8" => (8.0, 9),
        "N1_HIGHCPU_32" => (32.0, 9),
        other => {
            let (family, n) = other.rsplit_once('_')?;
            let n: f64 = n.parse().ok()?;
            let per_cpu = match family {
                "E2_HIGHCPU" => 10,
                "E2_STANDARD" => 40,
                "E2_HIGHMEM" => 80,
                _ => return None,
            };
            (n, per_cpu)
        }
    };
    Some((cpus, (cpus as u64) * gib_per_cpu_tenths * GIB / 10))
}

impl Limits {
    /// What a build asks for: its machine type's CPUs and memory (Cloud Build's default machine
    /// without one), its disk, and the default process limit.
    pub fn requested(machine_type: Option<&str>, disk_size_gb: Option<u64>) -> Limits {
        let (cpus, memory) = machine(machine_type.unwrap_or("UNSPECIFIED")).unwrap_or((2.0, 8 * GIB));
        let disk = disk_size_gb.filter(|gb| *gb > 0).unwrap_or(DEFAULT_DISK_GB);
        Limits { cpus: Some(cpus), memory: Some(memory), pids: Some(DEFAULT_PIDS), workspace: Some(disk * GIB) }
    }

    /// `self` bounded by `cap`; each lowered value is named in the returned lines.
    pub fn capped(self, cap: &Limits) -> (Limits, Vec<String>) {
        let mut notes = Vec::new();
        let mut note = |what: &str, asked: String, got: String| {
            notes.push(format!("{what}: the build asks for {asked}; this server gives at most {got}"));
        };
        let cpus = min_of(self.cpus, cap.cpus, |a, c| note("cpus", fmt_cpus(a), fmt_cpus(c)));
        let memory = min_of(self.memory, cap.memory, |a, c| note("memory", size(a), size(c)));
        let pids = min_of(self.pids, cap.pids, |a, c| note("pids", a.to_string(), c.to_string()));
        let workspace = min_of(self.workspace, cap.workspace, |a, c| note("workspace", size(a), size(c)));
        (Limits { cpus, memory, pids, workspace }, notes)
    }

    /// One line for the record and the log: `2 CPUs, 8 GiB memory, 4096 processes, 100 GiB workspace`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.cpus {
            parts.push(format!("{} CPU{}", fmt_cpus(c), if c == 1.0 { "" } else { "s" }));
        }
        if let Some(m) = self.memory {
            parts.push(format!("{} memory", size(m)));
        }
        if let Some(p) = self.pids {
            parts.push(format!("{p} processes"));
        }
        if let Some(w) = self.workspace {
            parts.push(format!("{} workspace", size(w)));
        }
        if parts.is_empty() { "no limits".into() } else { parts.join(", ") }
    }
}

/// The smaller of a request and a cap; `over(asked, cap)` is called when the cap lowered it.
fn min_of<T: PartialOrd + Copy>(asked: Option<T>, cap: Option<T>, mut over: impl FnMut(T, T)) -> Option<T> {
    match (asked, cap) {
        (Some(a), Some(c)) if a > c => {
            over(a, c);
            Some(c)
        }
        (Some(a), _) => Some(a),
        (None, c) => c,
    }
}

fn fmt_cpus(c: f64) -> String {
    if c.fract() == 0.0 { format!("{c:.0}") } else { format!("{c}") }
}

/// A byte count as people write it: `512 MiB`, `8 GiB`, `1.5 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if value.fract() == 0.0 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") };
        }
    }
    format!("{bytes} B")
}

/// Reads `512MiB`, `8GiB`, `1.5G`, `100GB`, `2048` (bytes). Decimal (`GB`) and binary (`GiB`) units
/// are both taken as binary, as Docker and Kubernetes users write them interchangeably for memory.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("`{other}` is not a unit of size (write e.g. `512MiB` or `8GiB`)")),
    };
    let bytes = value * scale as f64;
    if !(1.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("`{text}` is not a usable size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_types() {
        let cases = [
            ("UNSPECIFIED", Some((2.0, 8 * GIB))),
            ("E2_MEDIUM", Some((1.0, 4 * GIB))),
            ("E2_HIGHCPU_8", Some((8.0, 8 * GIB))),
            ("E2_HIGHCPU_32", Some((32.0, 32 * GIB))),
            ("N1_HIGHCPU_8", Some((8.0, 8 * 9 * GIB / 10))),
            ("E2_STANDARD_4", Some((4.0, 16 * GIB))),
            ("E2_HIGHMEM_2", Some((2.0, 16 * GIB))),
            ("E2_BIG", None),
            ("X_1", None),
        ];
        for (name, expected) in cases {
            assert_eq!(machine(name), expected, "{name}");
        }
        // Every machine type the build file accepts has a size.
        for name in crate::config::MACHINE_TYPES {
            assert!(machine(name).is_some(), "{name} has no size");
        }
    }

    #[test]
    fn requests_and_caps() {
        let asked = Limits::requested(Some("E2_HIGHCPU_8"), Some(500));
        assert_eq!(asked.describe(), "8 CPUs, 8 GiB memory, 4096 processes, 500 GiB workspace");
        let cap = Limits { cpus: Some(2.0), memory: Some(GIB / 2), pids: None, workspace: Some(GIB) };
        let (got, notes) = asked.capped(&cap);
        assert_eq!(got.describe(), "2 CPUs, 512 MiB memory, 4096 processes, 1 GiB workspace");
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0], "cpus: the build asks for 8; this server gives at most 2");
        assert_eq!(Limits::requested(None, None).describe(), "2 CPUs, 8 GiB memory, 4096 processes, 100 GiB workspace");
        let (same, none) = Limits::requested(None, None).capped(&Limits::default());
        assert_eq!((same, none.len()), (Limits::requested(None, None), 0));
    }

    #[test]
    fn sizes() {
        for (text, bytes) in
            [("512MiB", 512 << 20), ("8GiB", 8 << 30), ("1.5G", 3 << 29), ("100GB", 100 << 30), ("2048", 2048)]
        {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "GiB", "8 parsecs", "-1", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(size(512 << 20), "512 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
    }
}
