#!/usr/bin/env bash
# Time to run /bin/true in a fresh container, side by side in one run:
#   pier run --rm busybox true        (CLI -> pierd -> pier-shim -> runtime)
#   runc run  (the same busybox rootfs as an OCI bundle, the same namespaces
#              as pier's containers: pid, mount, uts, ipc, net, cgroup;
#              the runtime alone, no engine)
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
cleanup() {
    stop_pierd
    stop_dockerd
    runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1 || true
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
ns = {n["type"] for n in c["linux"]["namespaces"]}
for t in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
    if t not in ns:
        c["linux"]["namespaces"].append({"type": t})
json.dump(c, open(p, "w"))
PY

have_docker=0
if command -v dockerd >/dev/null && start_dockerd "$work/docker"; then
    docker import "$work/busybox.tar" busybox >/dev/null && have_docker=1
else
    echo "(no dockerd: docker's column is left out)" >&2
fi

declare -a t_pier t_runc t_docker
"$bin/pier" run --rm busybox true   # warm-up: starts pierd
[ $have_docker = 1 ] && docker run --rm --network none busybox true
for _ in $(seq "$runs"); do
    a=$(now_us); "$bin/pier" run --rm busybox true; b=$(now_us)
    t_pier+=($((b - a)))
    a=$(now_us); (cd "$work/bundle" && runc --root "$work/runc" run bench-runc); b=$(now_us)
    t_runc+=($((b - a)))
    if [ $have_docker = 1 ]; then
        a=$(now_us); docker run --rm --network none busybox true; b=$(now_us)
        t_docker+=($((b - a)))
    fi
done
mp=$(median "${t_pier[@]}"); mr=$(median "${t_runc[@]}")
md=; [ $have_docker = 1 ] && md=$(median "${t_docker[@]}")
echo "run /bin/true in a new container: median of $runs runs each, interleaved"
printf '%-38s %10s %10s %10s\n' "" "median ms" "vs runc" "vs docker"
row() {
    local vs_docker=-
    [ -n "$md" ] && vs_docker=$(printf '%.2fx' "$(echo "$2/$md" | bc -l)")
    printf '%-38s %10.1f %10s %10s\n' "$1" "$(echo "$2/1000" | bc -l)" \
        "$(printf '%.2fx' "$(echo "$2/$mr" | bc -l)")" "$vs_docker"
}
row "pier run --rm busybox true" "$mp"
row "runc run (bundle, /bin/true)" "$mr"
[ -n "$md" ] && row "docker run --rm --network none" "$md"
exit 0
