//! Docker-format seccomp profiles (`archMap`, per-rule `includes` and
//! `excludes` by architecture, capability and kernel version) flattened into
//! an OCI `linux.seccomp` object for this host, the way a container engine
//! does before handing the config to the runtime.

use serde_json::{json, Value};

/// The seccomp architecture name of this build's native architecture.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// Go's name of this architecture (what docker profiles' `arches` use).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The running kernel's (major, minor).
pub fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_kernel(&rel)
}

fn parse_kernel(rel: &str) -> (u32, u32) {
    let mut it = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Converts `profile` for a container whose bounding set is `caps`.
pub fn docker_to_oci(profile: &Value, caps: &[&str]) -> Value {
    convert(profile, caps, (native_arch(), go_arch()), kernel_version())
}

fn convert(
    profile: &Value,
    caps: &[&str],
    (native, goarch): (&str, &str),
    kernel: (u32, u32),
) -> Value {
    let mut arches = Vec::new();
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"].as_str() == Some(native) {
            arches.push(native.to_owned());
            arches.extend(
                strings(&m["subArchitectures"])
                    .into_iter()
                    .map(str::to_owned),
            );
        }
    }
    if arches.is_empty() {
        arches.extend(
            strings(&profile["architectures"])
                .into_iter()
                .map(str::to_owned),
        );
    }
    let kernel_ok = |v: &Value| match v.as_str() {
        Some(min) => parse_kernel(min) <= kernel,
        None => true,
    };
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        let inc = &rule["includes"];
        let exc = &rule["excludes"];
        let inc_arches = strings(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.contains(&goarch) {
            continue;
        }
        if !strings(&inc["caps"]).iter().all(|c| caps.contains(c)) {
            continue;
        }
        if !kernel_ok(&inc["minKernel"]) {
            continue;
        }
        if strings(&exc["arches"]).contains(&goarch) {
            continue;
        }
        if strings(&exc["caps"]).iter().any(|c| caps.contains(c)) {
            continue;
        }
        let mut out = json!({
            "names": rule.get("names").cloned().unwrap_or_else(|| json!([rule["name"]])),
            "action": rule["action"],
        });
        if let Some(a) = rule.get("args").filter(|a| !a.is_null()) {
            out["args"] = a.clone();
        }
        if let Some(e) = rule.get("errnoRet").filter(|e| !e.is_null()) {
            out["errnoRet"] = e.clone();
        }
        syscalls.push(out);
    }
    let mut oci = json!({
        "defaultAction": profile["defaultAction"],
        "architectures": arches,
        "syscalls": syscalls,
    });
    if let Some(e) = profile.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        oci["defaultErrnoRet"] = e.clone();
    }
    if let Some(f) = profile.get("flags").filter(|f| !f.is_null()) {
        oci["flags"] = f.clone();
    }
    oci
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_and_excludes() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.1"}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arm"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm"]}},
                {"names": ["x32"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}}
            ]
        });
        let o = convert(&p, &["CAP_KILL"], ("SCMP_ARCH_X86_64", "amd64"), (6, 1));
        let names: Vec<&str> = o["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["names"][0].as_str().unwrap())
            .collect();
        assert_eq!(names, ["read", "ptrace", "clone", "x32"]);
        assert_eq!(
            o["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert_eq!(o["defaultErrnoRet"], 1);
        let o = convert(
            &p,
            &["CAP_SYS_ADMIN"],
            ("SCMP_ARCH_X86_64", "amd64"),
            (6, 1),
        );
        assert_eq!(o["syscalls"].as_array().unwrap().len(), 4);
        assert_eq!(parse_kernel("6.1.0-18-amd64\n"), (6, 1));
    }
}
