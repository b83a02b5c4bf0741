#!/bin/sh
# Shows containerd running containers through pier-runtime:
#   ctr run --runc-binary /path/to/pier-runtime ...
# It starts a private containerd (own root, state and socket under a temp
# dir; the system's containerd is not touched), imports a busybox image
# built here as an OCI archive, runs it with pier-runtime as the runc
# binary of the io.containerd.runc.v2 shim and checks output and exit code.
#
# Usage (as root, Debian 12): scripts/containerd-pier-runtime.sh [PIER_RUNTIME]
# Needs: containerd (apt-get install containerd), busybox-static.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/debug/pier-runtime}
[ -x "$bin" ] || (cd "$here" && cargo build -p pier-runtime)
bin=$(readlink -f "$bin")
command -v containerd >/dev/null || { echo "containerd is not installed" >&2; exit 2; }
busybox=$(command -v busybox)

t=$(mktemp -d /var/tmp/pier-containerd.XXXXXX)
# containerd puts a namespace's containers under the cgroup /NAMESPACE, and
# leaves that parent behind: a namespace of our own, removed at the end.
ns=pier-ctr-$$
pid=
cleanup() {
    if [ -n "$pid" ]; then
        ctr -a "$t/containerd.sock" -n "$ns" task kill -s KILL pier-ctr-test >/dev/null 2>&1 || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    # Snapshots may still be mounted if containerd died mid-way.
    grep " $t/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$t"
    for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# A private containerd.
cat > "$t/config.toml" <<CONF
version = 2
root = "$t/root"
state = "$t/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$t/containerd.sock"
[ttrpc]
  address = "$t/containerd.sock.ttrpc"
[debug]
  level = "warn"
CONF
containerd --config "$t/config.toml" > "$t/containerd.log" 2>&1 &
pid=$!
i=0
until ctr -a "$t/containerd.sock" version >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$t/containerd.log" >&2; echo "containerd did not start" >&2; exit 1; }
    sleep 0.1
done

# A one-layer busybox image as an OCI archive.
rootfs=$t/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
cp "$busybox" "$rootfs/bin/busybox"
for a in $("$busybox" --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
oci=$t/oci
mkdir -p "$oci/blobs/sha256"
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$t/layer.tar" .
blob() { # FILE -> prints digest and size; moves the file into blobs/
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$oci/blobs/sha256/$d"
    echo "$d $s"
}
set -- $(blob "$t/layer.tar"); layer=$1; layer_size=$2
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > "$t/config.json"
set -- $(blob "$t/config.json"); cfg=$1; cfg_size=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cfg" "$cfg_size" "$layer" "$layer_size" > "$t/manifest.json"
set -- $(blob "$t/manifest.json"); man=$1; man_size=$2
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/pierbox:latest","org.opencontainers.image.ref.name":"latest"}}]}' "$man" "$man_size" > "$oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$oci/oci-layout"
tar -C "$oci" -cf "$t/image.tar" .

c="ctr -a $t/containerd.sock -n $ns"
$c image import --no-unpack=false "$t/image.tar" >/dev/null 2>&1 || $c image import "$t/image.tar"
$c image ls -q | grep -q pierbox

set +e
out=$($c run --rm --runc-binary "$bin" docker.io/library/pierbox:latest pier-ctr-test \
    sh -c 'echo "hello from $(id -un) pid $$"; exit 3' 2>&1)
code=$?
set -e
echo "$out"
echo "exit code: $code"
if [ "$code" -ne 3 ] || ! echo "$out" | grep -q "^hello from .* pid 1$"; then
    echo "FAIL: expected exit code 3 and the greeting" >&2
    echo "--- containerd log" >&2
    tail -n 30 "$t/containerd.log" >&2
    exit 1
fi
echo "OK: containerd ran busybox through $bin"

# exec through the shim (`runc exec --process FILE --detach --pid-file`).
$c run -d --runc-binary "$bin" docker.io/library/pierbox:latest pier-ctr-test sleep 1000 >/dev/null
set +e
out=$($c task exec --exec-id probe pier-ctr-test sh -c 'echo "exec sees pid 1: $(cat /proc/1/cmdline | tr "\0" " ")"; exit 5' 2>&1)
code=$?
set -e
echo "$out"
echo "exec exit code: $code"
$c task kill -s KILL pier-ctr-test >/dev/null 2>&1 || true
i=0
while $c task ls 2>/dev/null | grep -q "pier-ctr-test.*RUNNING"; do
    i=$((i + 1)); [ $i -lt 50 ] || break; sleep 0.1
done
$c task delete pier-ctr-test >/dev/null 2>&1 || true
$c container delete pier-ctr-test >/dev/null 2>&1 || true
if [ "$code" -ne 5 ] || ! echo "$out" | grep -q "exec sees pid 1: sleep 1000"; then
    echo "FAIL: ctr task exec: expected exit code 5 and the probe line" >&2
    tail -n 30 "$t/containerd.log" >&2
    exit 1
fi
echo "OK: ctr task exec ran through $bin"
