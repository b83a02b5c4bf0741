#!/usr/bin/env bash
# Docker's own CLI driving pierd: DOCKER_HOST points at pierd's socket and
# every docker command below goes through pier's Docker Engine API.
# pierd runs with its own temporary roots and is stopped at the end.
#   usage: sudo scripts/docker-cli-demo.sh      (needs docker.io's docker CLI
#   and busybox-static; no dockerd is used)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null || { echo "the docker CLI is not installed (apt-get install docker.io)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "/bin/busybox is missing (apt-get install busybox-static)" >&2; exit 1; }

[ -n "${PIER_NO_BUILD:-}" ] || cargo build --release --bins -q   # PIER_NO_BUILD=1: binaries as they are
bin=$PWD/target/release
work=$(mktemp -d /tmp/pier-docker-demo.XXXXXX)
export PIER_DATA_ROOT=$work/data PIER_EXEC_ROOT=$work/run
export DOCKER_HOST=unix://$work/run/pier.sock DOCKER_CONFIG=$work/docker-config
cleanup() {
    "$bin/pier" rm -f demo-web >/dev/null 2>&1 || true
    [ -f "$work/run/pierd.pid" ] && kill "$(cat "$work/run/pierd.pid")" 2>/dev/null || true
    sleep 0.2
    { grep " $work" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$work"
}
trap cleanup EXIT

root=$work/rootfs
mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -cf "$work/busybox.tar" .
# pier starts pierd on first use.
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null

show() { echo; echo "\$ $*"; "$@"; }
show docker version
show docker info --format 'server {{.ServerVersion}}, {{.Images}} image(s), root {{.DockerRootDir}}'
show docker images
show docker run --rm busybox echo hello from docker run on pierd
set +e
show docker run --rm busybox sh -c 'exit 3'
echo "exit code: $?"
set -e
show docker run -d --name demo-web busybox sh -c 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done'
show docker ps
show docker exec demo-web sh -c 'echo "in the container: hostname $(hostname), pid 1 is $(cat /proc/1/comm)"'
sleep 1
show docker logs --tail 3 demo-web
show docker inspect -f 'running={{.State.Running}} pid={{.State.Pid}} image={{.Config.Image}}' demo-web
show docker stop -t 1 demo-web
show docker ps -a
show docker rm demo-web
show docker ps -a
