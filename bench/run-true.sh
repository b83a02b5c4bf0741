#!/usr/bin/env bash
# Time to run /bin/true in a fresh container, side by side in one run:
#   pier run --rm busybox true        (CLI -> pierd -> pier-shim -> runtime)
#   runc run  (the same busybox rootfs as an OCI bundle, the runtime alone,
#              no engine), twice: `runc spec`'s config with pier's
#              namespaces (pid, ipc, uts, mount, net), and the config.json
#              pier itself wrote for a container (docker's seccomp profile,
#              capabilities, mounts, masked paths), which is the same work)
#   docker run --rm --network none busybox true   (a dockerd of the script's
#              own, the same busybox imported)
# Runs are interleaved so that machine noise hits every contender alike;
# the medians and the ratios are what to read (targets: pier <= 1.0x runc,
# about 0.1x docker).
#   usage: sudo bench/run-true.sh [RUNS]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
. bench/_peers.sh
command -v runc >/dev/null || { echo "runc is not installed (apt-get install runc)" >&2; exit 1; }

# PIER_BENCH_NO_BUILD=1: use the release binaries as they are.
[ -n "${PIER_BENCH_NO_BUILD:-}" ] || cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /tmp/pier-bench.XXXXXX)
export PIER_DATA_ROOT=$work/data PIER_EXEC_ROOT=$work/run
# No default bridge: nothing here needs one, and pierd would make pier0
# (and its nftables table) on the host and leave it.
export PIER_BRIDGE=none
cleanup() {
    stop_pierd
    stop_dockerd
    runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1 || true
    rmdir /sys/fs/cgroup/*/pier-bench/runc /sys/fs/cgroup/*/pier-bench 2>/dev/null || true
    sleep 0.3
    unmount_under "$work"
    rm -rf "$work"
}
trap cleanup EXIT

# One busybox rootfs for all: pier and dockerd import it, runc runs it.
make_busybox "$work"
mkdir -p "$work/bundle"
cp -a "$work/rootfs" "$work/bundle/rootfs"
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
# pier's (and docker's on cgroup v1) namespaces: no cgroup namespace.
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]
json.dump(c, open(p, "w"))
PY
# A second bundle with the config.json pier itself wrote for a container
# (docker's seccomp profile, capabilities, mounts, masked and read-only
# paths): runc doing exactly the work pier's runtime does.
"$bin/pier" run --name bench-config busybox true
cid=$("$bin/pier" inspect -f '{{.Id}}' bench-config)
mkdir -p "$work/bundle-pier"
python3 - "$PIER_DATA_ROOT/containers/$cid" "$work/bundle-pier" <<'PY'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
c = json.load(open(os.path.join(src, "config.json")))
c["root"] = {"path": os.path.join(os.path.dirname(dst), "bundle", "rootfs"), "readonly": False}
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = "/pier-bench/runc"
for m in c["mounts"]:
    s = m.get("source", "")
    if s.startswith(src):   # /etc/hostname, /etc/hosts: copies of pier's files
        copy = os.path.join(dst, os.path.basename(s))
        shutil.copy(s, copy)
        m["source"] = copy
json.dump(c, open(os.path.join(dst, "config.json"), "w"))
PY
"$bin/pier" rm bench-config >/dev/null

have_docker=0
if command -v dockerd >/dev/null && start_dockerd "$work/docker"; then
    docker import "$work/busybox.tar" busybox >/dev/null && have_docker=1
else
    echo "(no dockerd: docker's column is left out)" >&2
fi

declare -a t_pier t_runc t_runc2 t_docker
"$bin/pier" run --rm busybox true   # warm-up: starts pierd
[ $have_docker = 1 ] && docker run --rm --network none busybox true
for _ in $(seq "$runs"); do
    a=$(now_us); "$bin/pier" run --rm busybox true; b=$(now_us)
    t_pier+=($((b - a)))
    a=$(now_us); (cd "$work/bundle" && runc --root "$work/runc" run bench-runc); b=$(now_us)
    t_runc+=($((b - a)))
    a=$(now_us); (cd "$work/bundle-pier" && runc --root "$work/runc" run bench-runc); b=$(now_us)
    t_runc2+=($((b - a)))
    if [ $have_docker = 1 ]; then
        a=$(now_us); docker run --rm --network none busybox true; b=$(now_us)
        t_docker+=($((b - a)))
    fi
done
mp=$(median "${t_pier[@]}"); mr=$(median "${t_runc[@]}"); mr2=$(median "${t_runc2[@]}")
md=; [ $have_docker = 1 ] && md=$(median "${t_docker[@]}")
echo "run /bin/true in a new container: median of $runs runs each, interleaved"
printf '%-40s %9s %11s %11s %10s\n' "" "median ms" "vs runc" "vs runc-cfg" "vs docker"
ratio() { printf '%.2fx' "$(echo "$1/$2" | bc -l)"; }
row() {
    local vs_docker=-
    [ -n "$md" ] && vs_docker=$(ratio "$2" "$md")
    printf '%-40s %9.1f %11s %11s %10s\n' "$1" "$(echo "$2/1000" | bc -l)" \
        "$(ratio "$2" "$mr")" "$(ratio "$2" "$mr2")" "$vs_docker"
}
row "pier run --rm busybox true" "$mp"
row "runc run (runc spec bundle)" "$mr"
row "runc run (pier's config.json) = runc-cfg" "$mr2"
[ -n "$md" ] && row "docker run --rm --network none" "$md"
exit 0
