#!/usr/bin/env bash
# pier build vs docker build (BuildKit), side by side in one run, on the
# same Dockerfile and context:
#   FROM busybox / WORKDIR / COPY 20 MB (200 random files) / RUN writing
#   200 files / CMD
# three ways:
#   cold     --no-cache
#   warm     nothing changed (every step from the cache)
#   changed  one context file changed (COPY and RUN again, FROM/WORKDIR cached)
# Each is run RUNS times, interleaved (pier, docker, pier, docker...) so that
# machine noise hits both alike; medians and the ratio pier/docker are what
# to read. Targets (issue 9): cold <= 1.0x, warm <= 0.5x BuildKit.
# pier's CLI names the context directory to its local pierd, which reads
# it in place with a hash cache (docs/builder.md); PIER_BUILD_CONTEXT=tar
# in the environment benches the tar a remote daemon would get instead.
#
# docker: a dockerd of the script's own with the same busybox imported.
# BuildKit needs a docker CLI that drives it without buildx (the 20.10 CLI,
# Debian's /usr/bin/docker, does); its RUN steps use --network host, as
# pier's. Without one, the classic builder (DOCKER_BUILDKIT=0) is compared,
# and the output says so on every line.
#   usage: sudo bench/build.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
. bench/_peers.sh

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
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null

# The context: 200 random files of 100 KiB (20 MB) and the Dockerfile.
ctx=$work/ctx
mkdir -p "$ctx/data"
for i in $(seq -w 200); do
    head -c 102400 /dev/urandom >"$ctx/data/f$i"
done
cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox
WORKDIR /app
COPY data/ ./data/
RUN mkdir out && for i in $(seq 200); do echo "file $i" > out/$i.txt; done
CMD ["ls", "/app"]
EOF

have_docker=0
kind=""
if command -v dockerd >/dev/null && start_dockerd "$work/docker"; then
    docker import "$work/busybox.tar" busybox >/dev/null
    have_docker=1
    # A CLI that runs BuildKit without buildx: try PATH's, then Debian's 20.10.
    for cli in docker /usr/bin/docker; do
        if DOCKER_BUILDKIT=1 "$cli" build --network host -q -t probe - <<<$'FROM busybox\nRUN true' >/dev/null 2>&1; then
            dcli=$cli kind=buildkit
            break
        fi
    done
    if [ -z "$kind" ]; then
        dcli=docker kind=classic
        echo "NOTE: BuildKit cannot run here (no docker CLI drives it without buildx);" \
            "comparing with docker's CLASSIC builder (DOCKER_BUILDKIT=0)" >&2
    fi
else
    echo "(no dockerd: docker's column is left out)" >&2
fi

pier_build() { "$bin/pier" build -q -t bench "$@" "$ctx" >/dev/null; }
docker_build() {
    if [ "$kind" = buildkit ]; then
        DOCKER_BUILDKIT=1 "$dcli" build --network host -q -t bench "$@" "$ctx" >/dev/null
    else
        DOCKER_BUILDKIT=0 "$dcli" build -q -t bench "$@" "$ctx" >/dev/null
    fi
}
# change_one: a new random content for one COPYed file.
change_one() { head -c 102400 /dev/urandom >"$ctx/data/f100"; }

# Warm-ups: start pierd, fill both caches, check that both images run.
pier_build
[ "$("$bin/pier" run --rm bench | tr '\n' ' ')" = "data out " ] || { echo "pier's image is wrong" >&2; exit 1; }
if [ $have_docker = 1 ]; then
    docker_build
    [ "$(docker run --rm --network none bench | tr '\n' ' ')" = "data out " ] || { echo "docker's image is wrong" >&2; exit 1; }
fi

declare -a pc pw px dc dw dx
time_us() { local a b; a=$(now_us); "$@"; b=$(now_us); echo $((b - a)); }
for _ in $(seq "$runs"); do
    pc+=("$(time_us pier_build --no-cache)")
    [ $have_docker = 1 ] && dc+=("$(time_us docker_build --no-cache)")
    # warm: both caches hold the current context (the --no-cache builds
    # above replaced nothing the cache keys depend on).
    pier_build; [ $have_docker = 1 ] && docker_build
    pw+=("$(time_us pier_build)")
    [ $have_docker = 1 ] && dw+=("$(time_us docker_build)")
    change_one
    px+=("$(time_us pier_build)")
    [ $have_docker = 1 ] && dx+=("$(time_us docker_build)")
done

label=docker
[ "$kind" = buildkit ] && label="docker (BuildKit)"
[ "$kind" = classic ] && label="docker (CLASSIC builder, not BuildKit)"
echo "pier build vs $label: median of $runs runs each, interleaved"
echo "Dockerfile: FROM busybox, WORKDIR, COPY 20 MB (200 files), RUN writing 200 files, CMD"
printf '%-10s %12s %12s %10s %8s\n' "" "pier ms" "docker ms" "ratio" "target"
row() {
    local name=$1 target=$2 mp md ratio=-
    shift 2
    mp=$(median "${@:1:$runs}")
    local dms=-
    if [ $have_docker = 1 ]; then
        md=$(median "${@:$((runs + 1))}")
        dms=$(printf '%.1f' "$(echo "$md/1000" | bc -l)")
        ratio=$(printf '%.2fx' "$(echo "$mp/$md" | bc -l)")
    fi
    printf '%-10s %12.1f %12s %10s %8s\n' "$name" "$(echo "$mp/1000" | bc -l)" "$dms" "$ratio" "$target"
}
row cold "<=1.0x" "${pc[@]}" ${dc[@]+"${dc[@]}"}
row warm "<=0.5x" "${pw[@]}" ${dw[@]+"${dw[@]}"}
row changed "-" "${px[@]}" ${dx[@]+"${dx[@]}"}
exit 0
