#!/usr/bin/env bash
# Networking, pier vs docker side by side in one run (issue 10):
#  1. time to start a container on the default bridge network:
#     `run --rm busybox true` (a netns, a veth pair on the bridge, an
#     address, /etc/hosts and resolv.conf, and their removal), median of
#     RUNS, interleaved so machine noise hits both alike.
#     Target: pier <= 0.2x docker.
#  2. throughput through a published port from 127.0.0.1: a container runs
#     `nc -l -p 5000 -e dd of=/dev/null bs=1M iflag=fullblock` (dd reads
#     the socket itself: busybox nc's own copy loop, or a pipe to wc, would
#     cap both sides at ~200 MB/s and hide the difference), published with
#     -p 127.0.0.1::5000; the host sends SIZE MB to 127.0.0.1:HOSTPORT,
#     shuts its side and waits until the container closes the connection
#     (all bytes delivered; dd's `SIZE+0 records in` is checked in the
#     container's log). Median MB/s of XFERS transfers each, interleaved.
#     Target: pier >= 1.0x docker.
# docker runs as a dockerd of the script's own with its bridge and iptables
# on (its defaults: DNAT plus docker-proxy for 127.0.0.1), on a bridge the
# script makes (pbdock0, 10.250.0.1/24); pier's default bridge is pbpier0,
# 10.251.0.1/24. Both are removed at the end, with docker's iptables chains
# (when there were none before) and pier's nftables table.
#   usage: sudo bench/network.sh [RUNS] [XFERS] [SIZE_MB]   (50 5 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
xfers=${2:-5}
size=${3:-1000}
. bench/_peers.sh

pier_br=pbpier0 pier_bip=10.251.0.1/24
dock_br=pbdock0 dock_bip=10.250.0.1/24
for net in 10.250.0. 10.251.0.; do
    if ip -4 route | grep -q "^${net}"; then
        echo "a route to ${net}0/24 exists already; this bench needs that subnet" >&2
        exit 1
    fi
done

# PIER_BENCH_NO_BUILD=1: use the release binaries as they are.
[ -n "${PIER_BENCH_NO_BUILD:-}" ] || cargo build --release --bins -q
bin=$PWD/target/release
work=$(mktemp -d /tmp/pier-bench-net.XXXXXX)
export PIER_DATA_ROOT=$work/data PIER_EXEC_ROOT=$work/run
export PIER_BRIDGE=$pier_br PIER_BIP=$pier_bip

# docker's iptables chains are removed at the end only if it had none
# before (another dockerd's would be left alone).
docker_chains_before=$(iptables -S 2>/dev/null | grep -c -- '-N DOCKER' || true)
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}')
tables_before=$(nft list tables 2>/dev/null || true)
dockerd_pid=

remove_docker_iptables() {
    local t
    # pier's accept rules for its bridge in dockerd's FORWARD chain.
    iptables -S FORWARD 2>/dev/null | grep '^-A' | grep -- "$pier_br" | sed 's/^-A/-D/' |
        while read -r rule; do eval iptables "$rule" 2>/dev/null || true; done
    [ "$docker_chains_before" = 0 ] || return 0
    for t in filter nat; do
        # Rules in the built-in chains that jump to DOCKER* or name the
        # bench bridge, then docker's own chains.
        iptables -t $t -S 2>/dev/null | grep '^-A' | grep -v '^-A DOCKER' |
            grep -E -- "DOCKER|$dock_br|10\.250\.0\." | sed 's/^-A/-D/' |
            while read -r rule; do eval iptables -t $t "$rule" 2>/dev/null || true; done
        for c in $(iptables -t $t -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
            iptables -t $t -F "$c" 2>/dev/null || true
        done
        for c in $(iptables -t $t -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
            iptables -t $t -X "$c" 2>/dev/null || true
        done
    done
    [ -z "$forward_policy" ] || iptables -P FORWARD "$forward_policy" 2>/dev/null || true
    # iptables-nft's tables that dockerd made (absent before), now empty.
    for t in filter nat; do
        grep -qx "table ip $t" <<<"$tables_before" && continue
        nft list table ip $t 2>/dev/null | grep -qvE '^[[:space:]]*(table |chain |type |\}|$)' ||
            nft delete table ip $t 2>/dev/null || true
    done
}

cleanup() {
    set +e
    stop_pierd
    for _ in $(seq 50); do [ -f "$PIER_EXEC_ROOT/pierd.pid" ] && kill -0 "$(cat "$PIER_EXEC_ROOT/pierd.pid")" 2>/dev/null || break; sleep 0.1; done
    stop_dockerd
    sleep 0.3
    unmount_under "$work"
    ip link del "$pier_br" 2>/dev/null
    nft delete table ip "pier-$pier_br" 2>/dev/null
    ip link del "$dock_br" 2>/dev/null
    remove_docker_iptables
    rm -rf "$work"
}
trap cleanup EXIT

make_busybox "$work"
"$bin/pier" image import "$work/busybox.tar" busybox >/dev/null

have_docker=0
start_dockerd_bridged() {
    local dir=$1
    mkdir -p "$dir"
    ip link add "$dock_br" type bridge
    ip addr add "$dock_bip" dev "$dock_br"
    ip link set "$dock_br" up
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
        --host "unix://$dir/docker.sock" --bridge="$dock_br" --iptables=true --ip6tables=false \
        --ipv6=false >"$dir/log" 2>&1 </dev/null &
    dockerd_pid=$!
    export DOCKER_HOST=unix://$dir/docker.sock DOCKER_CONFIG=$dir/config
    for _ in $(seq 300); do
        docker version >/dev/null 2>&1 && return 0
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "dockerd did not start:" >&2; tail -5 "$dir/log" >&2
    return 1
}
if command -v dockerd >/dev/null && start_dockerd_bridged "$work/docker"; then
    docker import "$work/busybox.tar" busybox >/dev/null && have_docker=1
else
    echo "(no dockerd: docker's column is left out)" >&2
fi

# ---- 1. start a container on the bridge
declare -a t_pier t_docker
"$bin/pier" run --rm busybox true   # warm-up (starts pierd)
[ $have_docker = 1 ] && docker run --rm busybox true
# Each must really be on its bridge.
"$bin/pier" run --rm busybox ip -4 -o addr show eth0 | grep -q 'inet 10\.251\.0\.' ||
    { echo "pier's container has no address on $pier_br" >&2; exit 1; }
[ $have_docker = 1 ] && { docker run --rm busybox ip -4 -o addr show eth0 | grep -q 'inet 10\.250\.0\.' ||
    { echo "docker's container has no address on $dock_br" >&2; exit 1; }; }
for _ in $(seq "$runs"); do
    a=$(now_us); "$bin/pier" run --rm busybox true; b=$(now_us)
    t_pier+=($((b - a)))
    if [ $have_docker = 1 ]; then
        a=$(now_us); docker run --rm busybox true; b=$(now_us)
        t_docker+=($((b - a)))
    fi
done
mp=$(median "${t_pier[@]}")
md=; [ $have_docker = 1 ] && md=$(median "${t_docker[@]}")

# ---- 2. throughput through a published port
# send PORT SIZE_MB: prints MB/s once the receiver has closed.
send() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
buf = b"\0" * (1 << 20)
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("cannot connect to 127.0.0.1:%d" % port)
t = time.monotonic()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
s.settimeout(120)
while s.recv(65536):
    pass
print("%.1f" % (mb / (time.monotonic() - t)))
PY
}
# xfer CLI: one transfer through a new container; prints MB/s.
xfer() {
    local cli=$1 cid port rate got
    cid=$($cli run -d -p 127.0.0.1::5000 busybox nc -l -p 5000 -e dd of=/dev/null bs=1M iflag=fullblock)
    port=$($cli port "$cid" 5000/tcp | sed -n 's/^127\.0\.0\.1://p' | head -1)
    [ -n "$port" ] || { echo "$cli: no host port for 5000/tcp" >&2; $cli rm -f "$cid" >/dev/null; return 1; }
    sleep 1   # nc -l listening in the container
    rate=$(send "$port" "$size")
    $cli wait "$cid" >/dev/null
    got=$($cli logs "$cid" 2>&1 | sed -n 's/ records in$//p')
    $cli rm -f "$cid" >/dev/null
    [ "$got" = "$size+0" ] ||
        { echo "$cli: the container received $got MiB records of $size" >&2; return 1; }
    echo "$rate"
}
declare -a r_pier r_docker
for _ in $(seq "$xfers"); do
    r_pier+=("$(xfer "$bin/pier")")
    [ $have_docker = 1 ] && r_docker+=("$(xfer docker)")
done
rp=$(printf '%s\n' "${r_pier[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
rd=; [ $have_docker = 1 ] && rd=$(printf '%s\n' "${r_docker[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')

ratio() { printf '%.2fx' "$(echo "$1/$2" | bc -l)"; }
echo
echo "1. run --rm busybox true on the default bridge: median of $runs runs, interleaved"
printf '%-34s %10s %10s\n' "" "median ms" "vs docker"
printf '%-34s %10.1f %10s\n' "pier" "$(echo "$mp/1000" | bc -l)" "$([ -n "$md" ] && ratio "$mp" "$md" || echo -)"
[ -n "$md" ] && printf '%-34s %10.1f %10s\n' "docker (bridge, iptables)" "$(echo "$md/1000" | bc -l)" "1.00x"
echo "   target: pier <= 0.20x docker"
echo
echo "2. ${size} MB from 127.0.0.1 through a published port: median of $xfers transfers"
printf '%-34s %10s %10s\n' "" "MB/s" "vs docker"
printf '%-34s %10.1f %10s\n' "pier" "$rp" "$([ -n "$rd" ] && ratio "$rp" "$rd" || echo -)"
[ -n "$rd" ] && printf '%-34s %10.1f %10s\n' "docker (DNAT + docker-proxy)" "$rd" "1.00x"
echo "   target: pier >= 1.00x docker"
exit 0
