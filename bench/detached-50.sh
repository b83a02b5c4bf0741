#!/usr/bin/env bash
# 50 detached containers: `run -d busybox sleep 1000` fifty times, one
# after the other, then one `rm -f` of all fifty; pier vs a dockerd of the
# script's own (--network none for docker, as pier's default has no
# network). Rounds alternate pier and docker so that machine noise hits
# both alike. Target: pier <= 0.2x docker (start + remove).
#   usage: sudo bench/detached-50.sh [ROUNDS] [COUNT]   (default 1 round of 50)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
count=${2:-50}
. bench/_peers.sh
command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }

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
    sleep 0.3
    unmount_under "$work"
    rm -rf "$work"
}
trap cleanup EXIT

make_busybox "$work"
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null   # starts pierd
start_dockerd "$work/docker"
docker import "$work/busybox.tar" busybox >/dev/null
# Warm-up: one container each.
"$bin/pier" run --rm busybox true
docker run --rm --network none busybox true

# one_round CLI [extra run flags]: prints "start_us rm_us"
one_round() {
    local cli=$1; shift
    local ids=() a b c
    a=$(now_us)
    for _ in $(seq "$count"); do ids+=("$("$cli" run -d "$@" busybox sleep 1000)"); done
    b=$(now_us)
    "$cli" rm -f "${ids[@]}" >/dev/null
    c=$(now_us)
    [ -z "$("$cli" ps -aq)" ] || { echo "$cli: containers left after rm -f" >&2; exit 1; }
    echo "$((b - a)) $((c - b))"
}

declare -a ps pr ds dr
for _ in $(seq "$rounds"); do
    read -r s r < <(one_round "$bin/pier"); ps+=("$s"); pr+=("$r")
    read -r s r < <(one_round docker --network none); ds+=("$s"); dr+=("$r")
done
mps=$(median "${ps[@]}"); mpr=$(median "${pr[@]}")
mds=$(median "${ds[@]}"); mdr=$(median "${dr[@]}")
echo "$count x run -d busybox sleep 1000, then one rm -f of all; median of $rounds round(s)"
printf '%-28s %12s %12s %12s\n' "" "start (s)" "rm -f (s)" "total (s)"
printf '%-28s %12.2f %12.2f %12.2f\n' "pier" "$(echo "$mps/1000000" | bc -l)" "$(echo "$mpr/1000000" | bc -l)" "$(echo "($mps+$mpr)/1000000" | bc -l)"
printf '%-28s %12.2f %12.2f %12.2f\n' "docker (--network none)" "$(echo "$mds/1000000" | bc -l)" "$(echo "$mdr/1000000" | bc -l)" "$(echo "($mds+$mdr)/1000000" | bc -l)"
printf '%-28s %11.2fx %11.2fx %11.2fx\n' "ratio pier/docker" "$(echo "$mps/$mds" | bc -l)" "$(echo "$mpr/$mdr" | bc -l)" "$(echo "($mps+$mpr)/($mds+$mdr)" | bc -l)"
