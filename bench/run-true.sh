#!/usr/bin/env bash
# Time to run /bin/true in a fresh container, side by side in one run:
#   pier run --rm busybox true        (CLI -> pierd -> pier-shim -> runtime)
#   runc run  (the same busybox rootfs as an OCI bundle: runtime alone)
#   docker run --rm --network none busybox true   (when dockerd answers)
# Runs are interleaved so that machine noise hits every contender alike;
# the medians and the ratios are what to read.
#   usage: sudo bench/run-true.sh [RUNS]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}

cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /tmp/pier-bench.XXXXXX)
export PIER_DATA_ROOT=$work/data PIER_EXEC_ROOT=$work/run
cleanup() {
    [ -f "$work/run/pierd.pid" ] && kill "$(cat "$work/run/pierd.pid")" 2>/dev/null || true
    runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1 || true
    { grep " $work" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
}
trap cleanup EXIT

# One busybox rootfs for both: pier imports it, runc runs it as a bundle.
root=$work/bundle/rootfs
mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -cf "$work/busybox.tar" .
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"))
PY

have_docker=0
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker import "$work/busybox.tar" pier-bench-busybox >/dev/null && have_docker=1
fi

ms() { echo $(( ($2 - $1) / 1000 )); }   # ns -> us
declare -a t_pier t_runc t_docker
"$bin/pier" run --rm busybox true   # warm-up: starts pierd
for i in $(seq "$runs"); do
    a=$(date +%s%N); "$bin/pier" run --rm busybox true; b=$(date +%s%N)
    t_pier+=("$(ms "$a" "$b")")
    a=$(date +%s%N); (cd "$work/bundle" && runc --root "$work/runc" run bench-runc); b=$(date +%s%N)
    t_runc+=("$(ms "$a" "$b")")
    if [ $have_docker = 1 ]; then
        a=$(date +%s%N); docker run --rm --network none pier-bench-busybox true; b=$(date +%s%N)
        t_docker+=("$(ms "$a" "$b")")
    fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
mp=$(median "${t_pier[@]}"); mr=$(median "${t_runc[@]}")
echo "runs: $runs each, interleaved"
printf '%-34s %8.1f ms\n' "pier run --rm busybox true" "$(echo "$mp/1000" | bc -l)"
printf '%-34s %8.1f ms\n' "runc run (bundle, /bin/true)" "$(echo "$mr/1000" | bc -l)"
printf 'ratio pier/runc: %.2f\n' "$(echo "$mp/$mr" | bc -l)"
if [ $have_docker = 1 ]; then
    md=$(median "${t_docker[@]}")
    printf '%-34s %8.1f ms\n' "docker run --rm --network none" "$(echo "$md/1000" | bc -l)"
    printf 'ratio pier/docker: %.2f\n' "$(echo "$mp/$md" | bc -l)"
    docker rmi pier-bench-busybox >/dev/null 2>&1 || true
fi
