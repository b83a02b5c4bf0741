#!/usr/bin/env bash
# Memory per running container of each engine's per-container process:
# pier-shim vs docker's containerd-shim-runc-v2 (a dockerd of the script's
# own) vs podman's conmon (when podman is installed; its own roots).
# N `sleep 1000` containers each; RSS (VmRSS) and PSS (smaps_rollup) of
# every such process, averaged per container. PSS shares the pages the N
# processes have in common among them, so it is the honest per-container
# cost; RSS counts them again for each. Target: pier-shim <= 1 MB RSS
# (docker's shim ~13 MB, podman's conmon ~2 MB). podman runs its
# containers with runc (crun refuses hybrid cgroup hosts) and with limits
# the host's hard limits allow (raising them is not permitted here).
#   usage: sudo bench/shim-memory.sh [N]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
. bench/_peers.sh

# PIER_BENCH_NO_BUILD=1: use the release binaries as they are.
[ -n "${PIER_BENCH_NO_BUILD:-}" ] || cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /tmp/pier-bench.XXXXXX)
export PIER_DATA_ROOT=$work/data PIER_EXEC_ROOT=$work/run
# No default bridge: nothing here needs one, and pierd would make pier0
# (and its nftables table) on the host and leave it.
export PIER_BRIDGE=none
have_podman=0
podman_() {
    env -u DOCKER_CONFIG -u DOCKER_HOST podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp" \
        --cgroup-manager cgroupfs --events-backend file --storage-driver overlay --runtime runc "$@"
}
cleanup() {
    stop_pierd
    stop_dockerd
    if [ $have_podman = 1 ]; then podman_ rm -af -t 0 >/dev/null 2>&1 || true; fi
    sleep 0.3
    unmount_under "$work"
    rm -rf "$work"
}
trap cleanup EXIT

# pids whose command line starts with $1 and mentions $2
pids_of() {
    local p
    for p in /proc/[0-9]*; do
        local cmd
        cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        case "$cmd" in "$1"*"$2"*) echo "${p#/proc/}";; esac
    done
}
# measure LABEL PIDS...: prints a row (averages per process, KiB -> MB)
measure() {
    local label=$1; shift
    local rss=0 pss=0 k=0 p
    for p in "$@"; do
        rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
        pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
        k=$((k + 1))
    done
    [ "$k" -gt 0 ] || { echo "$label: no processes found" >&2; return 1; }
    printf '%-34s %6d %12.2f %12.2f\n' "$label" "$k" "$(echo "$rss/$k/1024" | bc -l)" "$(echo "$pss/$k/1024" | bc -l)"
    echo "${label// /_} $((rss / k)) $((pss / k))" >>"$work/rows"
}

make_busybox "$work"
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null
for _ in $(seq "$n"); do "$bin/pier" run -d busybox sleep 1000 >/dev/null; done

have_docker=0
if command -v dockerd >/dev/null && start_dockerd "$work/docker"; then
    docker import "$work/busybox.tar" busybox >/dev/null
    for _ in $(seq "$n"); do docker run -d --network none busybox sleep 1000 >/dev/null; done
    have_docker=1
fi
if command -v podman >/dev/null && command -v conmon >/dev/null; then
    mkdir -p "$work/podman"
    if podman_ import "$work/busybox.tar" busybox >/dev/null 2>"$work/podman/err"; then
        have_podman=1
        for _ in $(seq "$n"); do podman_ run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 busybox sleep 1000 >/dev/null; done
    else
        echo "(podman could not import the image: $(tail -1 "$work/podman/err"))" >&2
    fi
fi
sleep 1   # let every shim settle after its start-up

echo "per-container process memory, $n running containers each (averages)"
printf '%-34s %6s %12s %12s\n' "" "procs" "RSS (MB)" "PSS (MB)"
: >"$work/rows"
# shellcheck disable=SC2046
measure "pier-shim" $(pids_of "$bin/pier-shim" "$work")
[ $have_docker = 1 ] && measure "containerd-shim-runc-v2 (docker)" $(pids_of "/usr/bin/containerd-shim-runc-v2" "$work")
[ $have_podman = 1 ] && measure "conmon (podman)" $(pids_of "/usr/bin/conmon" "$work")
read -r _ prss ppss < <(head -1 "$work/rows")
tail -n +2 "$work/rows" | while read -r label rss pss; do
    printf 'pier-shim vs %-21s RSS %.2fx  PSS %.2fx\n' "$label:" "$(echo "$prss/$rss" | bc -l)" "$(echo "$ppss/$pss" | bc -l)"
done
