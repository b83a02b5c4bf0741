#!/usr/bin/env bash
# Builds pier, makes a busybox image from Debian's busybox-static (no
# registry needed) and runs a container from it. Run as root on Debian 12:
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The image needs a statically linked busybox: Debian's busybox-static.
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static
fi

echo "== building pier (release)"
cargo build --release --bins
PIER=$PWD/target/release/pier

echo "== making a busybox root filesystem"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -cf "$work/busybox.tar" .

echo "== pier image import busybox.tar busybox"
"$PIER" image import "$work/busybox.tar" busybox
"$PIER" images

echo "== pier run --rm busybox ..."
"$PIER" run --rm --hostname demo busybox sh -c \
    'echo "hello from $(hostname), pid $$"; echo "network interfaces:"; tail -n +3 /proc/net/dev | cut -d: -f1'
echo "== exit codes pass through: pier run --rm busybox sh -c \"exit 7\""
set +e
"$PIER" run --rm busybox sh -c 'exit 7'
echo "exit code: $?"
set -e
echo "== a web server on a user network, its port published on 127.0.0.1"
"$PIER" rm -f demo-web >/dev/null 2>&1 || true
"$PIER" network rm demo-net >/dev/null 2>&1 || true
"$PIER" network create demo-net >/dev/null
"$PIER" run -d --name demo-web --network demo-net -p 127.0.0.1::80 busybox sh -c \
    'mkdir -p /www && echo "hello from demo-web" >/www/index.html && httpd -f -p 80 -h /www' >/dev/null
addr=$("$PIER" port demo-web 80)
echo "pier port demo-web 80: $addr"
for _ in $(seq 50); do busybox wget -q -O- "http://$addr/" 2>/dev/null && break; sleep 0.1; done
echo "== another container on demo-net reaches it by name"
"$PIER" run --rm --network demo-net busybox wget -q -O- http://demo-web/
"$PIER" rm -f demo-web >/dev/null
"$PIER" network rm demo-net >/dev/null
"$PIER" info | sed -n '/Server:/,$p'
