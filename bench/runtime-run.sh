#!/usr/bin/env bash
# pier-runtime vs runc: `run` of a busybox bundle running /bin/true
# (create, start, wait, delete), interleaved, on the same bundle.
#
#   sudo bench/runtime-run.sh [RUNS]        (default 60 runs of each)
#
# Prints the median and mean wall time of each, the ratio pier/runc
# (target: median <= 0.5) and the peak RSS of each (GNU time's %M).
# Needs root, runc, busybox-static and GNU time (installed if missing).
set -euo pipefail

RUNS=${1:-60}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" != 0 ]; then echo "needs root" >&2; exit 1; fi
if ! [ -x /usr/bin/time ] || ! need runc || ! [ -x /bin/busybox ]; then
  apt-get install -y time runc busybox-static >/dev/null
fi

cargo build --release -q -p pier-runtime --manifest-path "$ROOT_DIR/Cargo.toml"
PIER="$ROOT_DIR/target/release/pier-runtime"
[ -n "${CARGO_TARGET_DIR:-}" ] && PIER="$CARGO_TARGET_DIR/release/pier-runtime"

WORK=$(mktemp -d /tmp/pier-bench.XXXXXX)
cleanup() {
  runc --root "$WORK/runc-state" delete -f bench-runc >/dev/null 2>&1 || true
  "$PIER" --root "$WORK/pier-state" delete -f bench-pier >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The bundle: busybox with its applets as symlinks; runc's default spec
# with terminal off and /bin/true as the program.
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE/rootfs/bin"
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
for a in $("$BUNDLE/rootfs/bin/busybox" --list); do
  [ "$a" = busybox ] || ln -s busybox "$BUNDLE/rootfs/bin/$a"
done
(cd "$BUNDLE" && runc spec)
python3 - "$BUNDLE/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(p, "w"), indent=1)
EOF

# Warm up both (page cache, binaries).
for _ in 1 2 3; do
  (cd "$BUNDLE" && runc --root "$WORK/runc-state" run bench-runc >/dev/null)
  (cd "$BUNDLE" && "$PIER" --root "$WORK/pier-state" run bench-pier >/dev/null)
done

# Peak RSS as GNU time reports it (a few runs of each).
rss() {
  local max=0 r
  for _ in 1 2 3 4 5; do
    r=$(cd "$BUNDLE" && /usr/bin/time -v "$@" 2>&1 >/dev/null |
      awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}')
    [ "$r" -gt "$max" ] && max=$r
  done
  echo "$max"
}
RUNC_RSS=$(rss runc --root "$WORK/runc-state" run bench-runc)
PIER_RSS=$(rss "$PIER" --root "$WORK/pier-state" run bench-pier)

# The timed runs: fork, exec, wait4 from one Python process, so the
# harness adds the same small cost to both (no shell, date or time(1)
# per run). (wait4's ru_maxrss would count the forked Python before the
# exec, so RSS comes from time -v above.)
python3 - "$BUNDLE" "$RUNS" "$WORK" "$PIER" "$RUNC_RSS" "$PIER_RSS" <<'EOF2'
import os, statistics, sys, time
bundle, runs, work, pier, runc_rss, pier_rss = sys.argv[1:7]
runs = int(runs)
cmds = {
    "runc": ["runc", "--root", f"{work}/runc-state", "run", "bench-runc"],
    "pier-runtime": [pier, "--root", f"{work}/pier-state", "run", "bench-pier"],
}
devnull = os.open(os.devnull, os.O_RDWR)
def once(argv):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.chdir(bundle)
        os.dup2(devnull, 0); os.dup2(devnull, 1)
        os.execvp(argv[0], argv)
    _, status, ru = os.wait4(pid, 0)
    dt = (time.perf_counter() - t0) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed: {status}")
    return dt, ru.ru_maxrss
res = {k: ([], []) for k in cmds}
for i in range(runs):
    order = ["runc", "pier-runtime"] if i % 2 else ["pier-runtime", "runc"]
    for name in order:
        t, r = once(cmds[name])
        res[name][0].append(t); res[name][1].append(r)
rt, pt = res["runc"][0], res["pier-runtime"][0]
print(f"runs: {runs} of each, interleaved; wall time per run (create, start, wait, delete)")
print(f"{'':14}{'median ms':>10}{'mean ms':>10}{'min ms':>9}{'max ms':>9}{'peak RSS KiB':>14}")
for name, extra in (("runc", runc_rss), ("pier-runtime", pier_rss)):
    t, r = res[name]
    print(f"{name:14}{statistics.median(t):10.2f}{statistics.mean(t):10.2f}{min(t):9.2f}{max(t):9.2f}{int(extra):14d}")
print(f"ratio pier/runc: median {statistics.median(pt) / statistics.median(rt):.3f}, "
      f"mean {statistics.mean(pt) / statistics.mean(rt):.3f} (target median <= 0.5)")
print(f"peak RSS ratio pier/runc: {int(pier_rss) / int(runc_rss):.3f} (GNU time -v, max of 5 runs each)")
EOF2
