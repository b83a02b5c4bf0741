#!/usr/bin/env bash
# `skopeo copy` push and pull of a 3-layer image (~80 MB gzipped, random
# content so nothing compresses) against `pier registry serve` (release
# build) and Debian's `docker-registry` (CNCF distribution), side by side:
# each round starts both servers on fresh storage, then pushes to one and
# the other (the order alternates between rounds), then pulls from each.
#   push: skopeo copy oci:LAYOUT:v1 docker://HOST/bench/img:v1
#   pull: skopeo copy docker://HOST/bench/img:v1 oci:FRESHDIR:v1
# Prints the median times, pier/distribution ratios, and each server's
# peak RSS (VmHWM of its process, the highest over the rounds).
#   usage: bench/registry.sh [ROUNDS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}

for b in skopeo docker-registry python3; do
    command -v "$b" >/dev/null || { echo "$b is not installed (apt-get install skopeo docker-registry python3)" >&2; exit 1; }
done
cargo build --release -q -p pier --bin pier
pier=$PWD/target/release/pier
work=$(mktemp -d /var/tmp/pier-bench-registry.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# skopeo's blob-info cache would let later rounds mount instead of upload.
export HOME=$work/home XDG_DATA_HOME=$work/home/.local/share
mkdir -p "$HOME"

# The image: an OCI layout with three gzipped tar layers of random bytes
# (48 + 24 + 8 MiB).
python3 - "$work/layout" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256")
def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{h}", "wb") as f:
        f.write(data)
    return f"sha256:{h}"
layers, diff_ids = [], []
for i, mib in enumerate([48, 24, 8]):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(mib << 20)
        info = tarfile.TarInfo(f"layer{i}/random.bin")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    gz = gzip.compress(tar, compresslevel=1)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": put(gz), "size": len(gz)})
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
manifest = json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": put(config), "size": len(config)},
    "layers": layers}).encode()
md = put(manifest)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(f"{out}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
print("image: 3 layers, %.1f MB gzipped" % (sum(l["size"] for l in layers) / 1e6))
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "http://$1/v2/" && return 0; sleep 0.05; done; echo "no answer on $1" >&2; return 1; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

start_pier() {
    pier_addr=127.0.0.1:$(free_port)
    "$pier" registry serve --addr "$pier_addr" --root "$work/pier-store-$1" 2>"$work/pier-$1.log" &
    pier_pid=$!; pids+=("$pier_pid")
    wait_http "$pier_addr"
}
start_dist() {
    dist_addr=127.0.0.1:$(free_port)
    cat >"$work/dist-$1.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/dist-store-$1
  delete:
    enabled: true
http:
  addr: $dist_addr
EOF
    docker-registry serve "$work/dist-$1.yml" >"$work/dist-$1.log" 2>&1 &
    dist_pid=$!; pids+=("$dist_pid")
    wait_http "$dist_addr"
}

push() { skopeo copy -q --dest-tls-verify=false "oci:$work/layout:v1" "docker://$1/bench/img:v1" >/dev/null; }
pull() { rm -rf "$2"; skopeo copy -q --src-tls-verify=false "docker://$1/bench/img:v1" "oci:$2:v1" >/dev/null; }

declare -a pier_push dist_push pier_pull dist_pull
pier_rss=0; dist_rss=0
for i in $(seq "$rounds"); do
    start_pier "$i"; start_dist "$i"
    order="pier dist"; [ $((i % 2)) -eq 0 ] && order="dist pier"
    for who in $order; do
        addr=$pier_addr; [ "$who" = dist ] && addr=$dist_addr
        t0=$(now); push "$addr"; t1=$(now)
        eval "${who}_push+=($(ms "$t0" "$t1"))"
    done
    for who in $order; do
        addr=$pier_addr; [ "$who" = dist ] && addr=$dist_addr
        sync
        t0=$(now); pull "$addr" "$work/pulled"; t1=$(now)
        eval "${who}_pull+=($(ms "$t0" "$t1"))"
    done
    r=$(hwm "$pier_pid"); [ "$r" -gt "$pier_rss" ] && pier_rss=$r
    r=$(hwm "$dist_pid"); [ "$r" -gt "$dist_rss" ] && dist_rss=$r
    kill "$pier_pid" "$dist_pid"; wait "$pier_pid" "$dist_pid" 2>/dev/null || true
    pids=()
    rm -rf "$work/pier-store-$i" "$work/dist-store-$i" "$work/pulled"
    echo "round $i: push pier ${pier_push[-1]} ms, distribution ${dist_push[-1]} ms; pull pier ${pier_pull[-1]} ms, distribution ${dist_pull[-1]} ms"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
mp=$(median "${pier_push[@]}"); md=$(median "${dist_push[@]}")
lp=$(median "${pier_pull[@]}"); ld=$(median "${dist_pull[@]}")
echo
echo "median of $rounds rounds      pier   distribution   pier/distribution"
printf "push (skopeo copy)   %7s ms %10s ms   %sx\n" "$mp" "$md" "$(ratio "$mp" "$md")"
printf "pull (skopeo copy)   %7s ms %10s ms   %sx\n" "$lp" "$ld" "$(ratio "$lp" "$ld")"
printf "peak RSS (VmHWM)     %7s KiB %8s KiB  %sx\n" "$pier_rss" "$dist_rss" "$(ratio "$pier_rss" "$dist_rss")"
