# Sourced by bench/*.sh: a busybox image made from Debian's busybox-static
# and a dockerd of the script's own (own data/exec roots and socket, no
# bridge or iptables), stopped by the script's cleanup.

# make_busybox DIR: DIR/rootfs and DIR/busybox.tar
make_busybox() {
    local root=$1/rootfs
    mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    tar -C "$root" -cf "$1/busybox.tar" .
}

# start_dockerd DIR: sets DOCKER_HOST for this script and dockerd_pid.
start_dockerd() {
    local dir=$1
    mkdir -p "$dir"
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
        --host "unix://$dir/docker.sock" --bridge=none --iptables=false --ip6tables=false \
        >"$dir/log" 2>&1 </dev/null &
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

# stop_dockerd: removes its containers, then SIGTERM (it stops its containerd).
stop_dockerd() {
    [ -n "${dockerd_pid:-}" ] || return 0
    docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$dockerd_pid" 2>/dev/null || true
    dockerd_pid=
}

# stop_pierd: removes its containers, then SIGTERM.
stop_pierd() {
    [ -f "$PIER_EXEC_ROOT/pierd.pid" ] || return 0
    "$bin/pier" ps -aq 2>/dev/null | xargs -r "$bin/pier" rm -f >/dev/null 2>&1 || true
    kill "$(cat "$PIER_EXEC_ROOT/pierd.pid")" 2>/dev/null || true
}

# unmount_under DIR
unmount_under() {
    { grep " $1" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }
