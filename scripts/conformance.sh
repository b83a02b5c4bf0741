#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite against runc and pier-runtime,
# one test executable at a time, and prints a side-by-side table.
#
#   scripts/conformance.sh RUNTIME_TOOLS_DIR [PIER_RUNTIME] [TEST...]
#
# RUNTIME_TOOLS_DIR is a built checkout of github.com/opencontainers/runtime-tools
# (`make runtimetest validation-executables`; docs/conformance.md says how).
# PIER_RUNTIME defaults to target/release/pier-runtime, else target/debug.
# TESTs are names such as `hooks` or `linux_sysctl`; default: every one.
#
# Each runtime gets its own --root under a private work directory, and TMPDIR
# points there too so every bundle the suite makes lands in it. After every
# test the script force-deletes what the runtime still lists, removes the
# cgroups the suite names (cgrouptest, testdir, uuid ids) and finally the work
# directory. Environment: RUNC (default: runc), TEST_TIMEOUT (default: 120 s),
# KEEP_LOGS=1 keeps the TAP output of every run (the path is printed).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "conformance.sh: the suite creates real containers; run it as root" >&2
    exit 2
fi

tools_dir=$(cd "$1" && pwd)
shift
repo_dir=$(cd "$(dirname "$0")/.." && pwd)
pier_bin=${1:-}
[[ $# -gt 0 ]] && shift
if [[ -z $pier_bin ]]; then
    pier_bin=$repo_dir/target/release/pier-runtime
    [[ -x $pier_bin ]] || pier_bin=$repo_dir/target/debug/pier-runtime
fi
pier_bin=$(readlink -f "$pier_bin")
runc_bin=$(command -v "${RUNC:-runc}" || true)
timeout_s=${TEST_TIMEOUT:-120}

for need in "$tools_dir/runtimetest" "$tools_dir/rootfs-amd64.tar.gz" "$pier_bin" "$runc_bin"; do
    if [[ ! -e $need ]]; then
        echo "conformance.sh: missing $need (build runtime-tools and pier-runtime first)" >&2
        exit 2
    fi
done

if [[ $# -gt 0 ]]; then
    tests=("$@")
else
    mapfile -t tests < <(find "$tools_dir/validation" -mindepth 2 -maxdepth 2 -name '*.t' \
        -printf '%h\n' | xargs -n1 basename | sort)
fi

work=$(mktemp -d /tmp/pier-conformance-XXXXXX)
uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# Removes the cgroups this suite creates: its fixed paths and containers named by uuid.
remove_suite_cgroups() {
    local dir
    for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [[ -d $hierarchy ]] || continue
        find "$hierarchy" -mindepth 1 -maxdepth 6 -depth -type d 2>/dev/null |
            { grep -E "/(cgrouptest|testdir)(/|$)|/$uuid_re$" || true; } |
            while read -r dir; do rmdir "$dir" 2>/dev/null || true; done
    done
}

# Force-deletes every container left in one runtime's root.
delete_leftovers() {
    local wrapper=$1 id
    for id in $("$wrapper" list -q 2>/dev/null || true); do
        "$wrapper" delete --force "$id" >/dev/null 2>&1 || true
    done
}

# A container without a mount namespace (linux_ns_itype) mounts its /proc,
# /dev and /sys in the caller's namespace; runc leaves those behind.
unmount_leftovers() {
    awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

cleanup() {
    for name in runc pier; do
        [[ -x $work/bin-$name/runtime ]] && delete_leftovers "$work/bin-$name/runtime"
    done
    remove_suite_cgroups
    unmount_leftovers
    # Bundles are plain directories; refuse to recurse through anything still mounted.
    if grep -q " $work" /proc/self/mountinfo; then
        echo "conformance.sh: mounts left under $work, not removing it" >&2
    elif [[ ${KEEP_LOGS:-0} == 1 ]]; then
        rm -rf "$work/tmp" "$work"/root-*
        echo "TAP logs kept in $work/logs" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

make_wrapper() {
    local name=$1 bin=$2
    mkdir -p "$work/bin-$name" "$work/root-$name"
    cat >"$work/bin-$name/runtime" <<EOF
#!/bin/sh
exec "$bin" --root "$work/root-$name" "\$@"
EOF
    chmod +x "$work/bin-$name/runtime"
}
make_wrapper runc "$runc_bin"
make_wrapper pier "$pier_bin"
mkdir -p "$work/tmp" "$work/logs"

# Prints "verdict ok notok skip" for one TAP log and the test's exit code.
classify() {
    local log=$1 rc=$2 ok notok skip
    ok=$(grep -cE '^ok [0-9]+' "$log" || true)
    skip=$(grep -cE '^ok [0-9]+.*# *SKIP' "$log" || true)
    notok=$(grep -cE '^not ok [0-9]+' "$log" || true)
    ok=$((ok - skip))
    # Some tests print no assertion at all. The hook tests print an empty
    # plan, plus an "error" diagnostic when the check failed; the *_fail
    # tests print nothing and exit 1 when the runtime accepted a bad config.
    if grep -qE '^1\.\.0$' "$log" && grep -qE '^ *"error": ' "$log"; then
        notok=$((notok + 1))
    fi
    if [[ $rc -eq 124 ]]; then
        echo "TIMEOUT $ok $notok $skip"
    elif [[ $notok -gt 0 || $rc -ne 0 ]]; then
        echo "FAIL $ok $notok $skip"
    elif [[ $ok -eq 0 && $skip -gt 0 ]]; then
        echo "SKIP $ok $notok $skip"
    else
        echo "PASS $ok $notok $skip"
    fi
}

run_one() {
    local name=$1 test=$2 log=$work/logs/$2.$1.tap rc=0
    (
        cd "$tools_dir"
        RUNTIME=$work/bin-$name/runtime TMPDIR=$work/tmp \
            timeout --kill-after=10 "$timeout_s" "validation/$test/$test.t"
    ) >"$log" 2>&1 || rc=$?
    delete_leftovers "$work/bin-$name/runtime"
    remove_suite_cgroups
    unmount_leftovers
    classify "$log" "$rc"
}

declare -A total
for key in runc-PASS runc-FAIL runc-SKIP runc-TIMEOUT pier-PASS pier-FAIL pier-SKIP pier-TIMEOUT; do
    total[$key]=0
done
differ=()

printf '%-36s %-22s %-22s\n' TEST "RUNC (ok/notok/skip)" "PIER (ok/notok/skip)"
for test in "${tests[@]}"; do
    if [[ ! -x $tools_dir/validation/$test/$test.t ]]; then
        echo "conformance.sh: no test executable validation/$test/$test.t" >&2
        exit 2
    fi
    read -r rv rok rnot rskip < <(run_one runc "$test")
    read -r pv pok pnot pskip < <(run_one pier "$test")
    total[runc-$rv]=$((total[runc-$rv] + 1))
    total[pier-$pv]=$((total[pier-$pv] + 1))
    [[ $rv == PASS && $pv != PASS ]] && differ+=("$test")
    printf '%-36s %-22s %-22s\n' "$test" "$rv $rok/$rnot/$rskip" "$pv $pok/$pnot/$pskip"
done

echo
for name in runc pier; do
    printf '%-5s pass %3d  fail %3d  skip %3d  timeout %3d\n' "$name" \
        "${total[$name-PASS]}" "${total[$name-FAIL]}" "${total[$name-SKIP]}" "${total[$name-TIMEOUT]}"
done
if [[ ${#differ[@]} -gt 0 ]]; then
    echo "runc passes, pier does not: ${differ[*]}"
    KEEP_LOGS=1
    exit 1
fi
echo "pier passes every test runc passes"
