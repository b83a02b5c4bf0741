#!/usr/bin/env bash
# Registry pull and push, pier side by side with its peers, interleaved so
# machine noise hits both alike.
#   image: 3 layers of random data (40 + 25 + 15 MB, gzip: ~80 MB), made
#   here as an OCI layout and copied by skopeo into a local docker-registry.
#   pull (cold): POST /images/create to pierd | the same request to a dockerd
#     of the script's own, which one first alternating between rounds; both
#     stores emptied between rounds (pier rmi + image prune -a; docker rmi),
#     both daemons on the same filesystem, the same curl as client, so the
#     numbers compare the daemons' work.
#   push (cold): pier push (POST /images/NAME/push) | skopeo copy oci:LAYOUT
#     docker://..., each to a fresh docker-registry started for the round.
# Reports medians and ratios (targets: pull <= 0.25x docker, push <= 1.0x
# skopeo) and pierd's peak RSS.
#   usage: sudo bench/pull-push.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}

for b in dockerd docker-registry skopeo curl python3; do
    command -v "$b" >/dev/null || { echo "$b is not installed (docker.io, docker-registry, skopeo, curl, python3)" >&2; exit 1; }
done
cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /var/tmp/pier-bench.XXXXXX)
export PIER_DATA_ROOT=$work/pier-data PIER_EXEC_ROOT=$work/pier-run
# No default bridge: nothing here needs one, and pierd would make pier0
# (and its nftables table) on the host and leave it.
export PIER_BRIDGE=none
dsock=$work/docker.sock
cleanup() {
    [ -f "$work/pier-run/pierd.pid" ] && kill "$(cat "$work/pier-run/pierd.pid")" 2>/dev/null || true
    [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    # Registries write their pid files (start_registry runs in a subshell).
    for f in "$work"/reg-*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    { grep " $work" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_registry NAME -> prints host:port; the registry's pid goes to reg-NAME/pid.
start_registry() {
    local dir=$work/reg-$1 port
    port=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
YML
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    echo "127.0.0.1:$port"
}

# The image, as an OCI layout.
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
diffs=() layers=()
for spec in 1:40000000 2:25000000 3:15000000; do
    n=${spec%%:*} size=${spec#*:}
    mkdir -p "$work/l$n"
    head -c "$size" /dev/urandom >"$work/l$n/data$n"
    tar -C "$work/l$n" -cf "$work/l$n.tar" .
    diffs+=("\"sha256:$(sha256sum <"$work/l$n.tar" | cut -d' ' -f1)\"")
    gzip -1 -c "$work/l$n.tar" >"$work/l$n.tgz"
    d=$(sha256sum <"$work/l$n.tgz" | cut -d' ' -f1)
    mv "$work/l$n.tgz" "$layout/blobs/sha256/$d"
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$layout/blobs/sha256/$d")}")
    rm -rf "$work/l$n" "$work/l$n.tar"
done
put() { local d; d=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1); printf '%s' "$1" >"$layout/blobs/sha256/$d"; echo "$d"; }
IFS=,
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[${diffs[*]}]}}"
cd_=$(put "$config")
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cd_\",\"size\":${#config}},\"layers\":[${layers[*]}]}"
unset IFS
md=$(put "$manifest")
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$md\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"1\"}}]}" >"$layout/index.json"
src=$(start_registry src)
skopeo copy -q --dest-tls-verify=false "oci:$layout:1" "docker://$src/bench/img:1"
echo "image: $(du -sh "$layout/blobs" | cut -f1) in 3 gzip layers, at $src/bench/img:1"

dockerd --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --pidfile "$work/docker.pid" --host "unix://$dsock" \
    --bridge=none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do curl -fs --unix-socket "$dsock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.3; done
"$bin/pier" images >/dev/null   # starts pierd
psock=$work/pier-run/pier.sock

# api SOCKET METHOD PATH: fails on an HTTP error or an error line in the stream.
api() {
    local out
    out=$(curl -sS --fail-with-body -X "$2" --unix-socket "$1" "http://d$3")
    if grep -q '"error"' <<<"$out"; then echo "$out" | grep '"error"' >&2; return 1; fi
}
ms() { echo $(( ($2 - $1) / 1000000 )); }
declare -a dp pp sp xp
for i in $(seq "$rounds"); do
    "$bin/pier" rmi -f "$src/bench/img:1" >/dev/null 2>&1 || true
    "$bin/pier" image prune -a -f >/dev/null
    curl -s -X DELETE --unix-socket "$dsock" "http://d/images/$src/bench/img:1?force=1" >/dev/null
    sync
    # Who pulls first alternates: the second pull of a round runs right
    # after the first's ~160 MB of writes (synced, but the disk is still
    # busy), which cost pier ~20% (167 vs 203 ms, 7 rounds each, same hour).
    pull_docker() { a=$(date +%s%N); api "$dsock" POST "/images/create?fromImage=$src/bench/img&tag=1"; b=$(date +%s%N); dp+=("$(ms "$a" "$b")"); }
    pull_pier() { a=$(date +%s%N); api "$psock" POST "/images/create?fromImage=$src/bench/img&tag=1"; b=$(date +%s%N); pp+=("$(ms "$a" "$b")"); }
    if (( i % 2 )); then pull_docker; sync; pull_pier; else pull_pier; sync; pull_docker; fi
    sync
    pdst=$(start_registry "p$i") sdst=$(start_registry "s$i")
    "$bin/pier" tag "$src/bench/img:1" "$pdst/bench/pushed:1"
    a=$(date +%s%N); api "$psock" POST "/images/$pdst/bench/pushed/push?tag=1"; b=$(date +%s%N); xp+=("$(ms "$a" "$b")")
    a=$(date +%s%N); skopeo copy -q --dest-tls-verify=false "oci:$layout:1" "docker://$sdst/bench/pushed:1"; b=$(date +%s%N); sp+=("$(ms "$a" "$b")")
    echo "round $i: pull docker ${dp[-1]} ms, pier ${pp[-1]} ms; push skopeo ${sp[-1]} ms, pier ${xp[-1]} ms"
done
# What pier pushed is whole: skopeo reads it back.
skopeo inspect --tls-verify=false "docker://$pdst/bench/pushed:1" >/dev/null

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v p="$1" -v d="$2" 'BEGIN {printf "%.2f", p / d}'; }
d=$(median "${dp[@]}") p=$(median "${pp[@]}")
printf 'pull  docker %6s ms   pier %6s ms   pier/docker %s  (target <= 0.25)\n' "$d" "$p" "$(ratio "$p" "$d")"
s=$(median "${sp[@]}") x=$(median "${xp[@]}")
printf 'push  skopeo %6s ms   pier %6s ms   pier/skopeo %s  (target <= 1.0)\n' "$s" "$x" "$(ratio "$x" "$s")"
echo "pierd peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$(cat "$work/pier-run/pierd.pid")/status")"
