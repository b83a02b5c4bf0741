#!/usr/bin/env bash
# `load` and `save` of a 3-layer, ~160 MB image, pier side by side with
# Docker, interleaved so machine noise hits both alike:
#   layer 1: busybox (2 MB); layer 2: one 80 MB file; layer 3: 2000 files
#   of 40 KB (80 MB). Random content, so nothing compresses.
# The image is built by Docker and saved once; each round then
#   docker rmi + docker load -i docker.tar   |  pier rmi + prune + pier load -i docker.tar
#   docker save -o d.tar                      |  pier save -o p.tar
# Both daemons write their stores on the same filesystem. dockerd runs with
# its own roots and socket in a temp dir (no bridge, no iptables).
#   usage: sudo bench/image-save-load.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}

command -v dockerd >/dev/null || { echo "dockerd not installed: apt-get install docker.io" >&2; exit 1; }
cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /var/tmp/pier-bench.XXXXXX)
export PIER_DATA_ROOT=$work/pier-data PIER_EXEC_ROOT=$work/pier-run
# No default bridge: nothing here needs one, and pierd would make pier0
# (and its nftables table) on the host and leave it.
export PIER_BRIDGE=none
export DOCKER_HOST=unix://$work/docker.sock DOCKER_BUILDKIT=0 DOCKER_CONFIG=$work/docker-config
cleanup() {
    [ -f "$work/pier-run/pierd.pid" ] && kill "$(cat "$work/pier-run/pierd.pid")" 2>/dev/null || true
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    # (|| true: grep finding no mount must not stop the cleanup under set -e)
    { grep " $work" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
}
trap cleanup EXIT

dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" --host "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.3; done
docker version >/dev/null || { echo "dockerd did not start:"; tail "$work/dockerd.log"; exit 1; }

root=$work/rootfs
mkdir -p "$root"/{bin,etc}
cp /bin/busybox "$root/bin/busybox"
for a in sh cat ls true; do ln -s busybox "$root/bin/$a"; done
tar -C "$root" -cf "$work/busybox.tar" .
docker import "$work/busybox.tar" bench-base:1 >/dev/null
mkdir -p "$work/ctx"
cat >"$work/ctx/Dockerfile" <<'EOF'
FROM bench-base:1
RUN head -c 83886080 /dev/urandom > /big
RUN mkdir /many && i=0; while [ $i -lt 2000 ]; do head -c 40960 /dev/urandom > /many/f$i; i=$((i+1)); done
CMD ["ls", "/"]
EOF
docker build -q -t bench:1 "$work/ctx" >/dev/null
docker save -o "$work/docker.tar" bench:1
echo "image: $(du -h "$work/docker.tar" | cut -f1), $(docker image inspect -f '{{len .RootFS.Layers}}' bench:1) layers"

ms() { echo $(( ($2 - $1) / 1000000 )); }
declare -a dl pl ds ps
"$bin/pier" images >/dev/null   # starts pierd
for i in $(seq "$rounds"); do
    docker rmi -f bench:1 bench-base:1 >/dev/null 2>&1 || true
    "$bin/pier" rmi -f bench:1 >/dev/null 2>&1 || true
    "$bin/pier" image prune -a -f >/dev/null
    sync
    a=$(date +%s%N); docker load -q -i "$work/docker.tar" >/dev/null; b=$(date +%s%N); dl+=("$(ms "$a" "$b")")
    sync
    a=$(date +%s%N); "$bin/pier" load -q -i "$work/docker.tar"; b=$(date +%s%N); pl+=("$(ms "$a" "$b")")
    sync
    rm -f "$work/d.tar" "$work/p.tar"
    a=$(date +%s%N); docker save -o "$work/d.tar" bench:1; b=$(date +%s%N); ds+=("$(ms "$a" "$b")")
    a=$(date +%s%N); "$bin/pier" save -o "$work/p.tar" bench:1; b=$(date +%s%N); ps+=("$(ms "$a" "$b")")
    echo "round $i: load docker ${dl[-1]} ms, pier ${pl[-1]} ms; save docker ${ds[-1]} ms, pier ${ps[-1]} ms"
done
"$bin/pier" run --rm bench:1 true   # the loaded image runs

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report() {
    local d p
    d=$(median "${@:2:$rounds}"); p=$(median "${@:$((rounds + 2))}")
    printf '%-5s docker %6s ms   pier %6s ms   pier/docker %s\n' "$1" "$d" "$p" \
        "$(awk -v p="$p" -v d="$d" 'BEGIN {printf "%.2f", p / d}')"
}
echo "medians of $rounds rounds:"
report load "${dl[@]}" "${pl[@]}"
report save "${ds[@]}" "${ps[@]}"
