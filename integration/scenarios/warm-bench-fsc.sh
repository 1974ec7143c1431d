#!/bin/bash
# manual: how each reader fills the page cache and FS-Cache through an NFS (or,
# with BENCH_FS=cifs, a CIFS) mount with `fsc` (the product's main path), and why.
# Every tool reads its own fresh file, so each run starts network-cold and
# cache-cold; the client's own counters (NFS: READ operations, bytes, round-trip
# time from /proc/self/mountstats; CIFS: the share's READs and bytes from
# /proc/fs/cifs/Stats) and FS-Cache's (and, on 6.4+, netfs's) are recorded
# around each run. Then the page cache is dropped and every file is read again
# by the same tool: served by FS-Cache. A plain mount (no fsc) of the same export
# gives the baseline. It also logs the strategy `cachectl warm` picks on the fsc
# mount, each tool's fixed cost (median of 5 runs on a file already in the page
# cache, and of `cachectl --version`) and how much FS-Cache holds between rounds.
# Each phase has a ceiling, read with O_DIRECT (neither cache): cold, a file on the
# mount (the server and the link); from FS-Cache, one of cachefiles' files on the
# cache's disk. The summary gives each tool's GiB/s and its share of that ceiling.
# netem delays every packet on lo (the server is on 127.0.0.1). TCG makes every
# number slow; read the ratios and the counters. Use the release binary:
#   integration/build-release && CACHECTL=$PWD/.build/release/cachectl \
#     integration/vm/run --kernel 6.12 warm-bench-fsc
# Optional: --env BENCH_FS=cifs (Samba on 127.0.0.1, shares "fsc" and "plain"
# of the same directory, SMB 3.1.1 with the client's default rsize; default nfs),
# --env BENCH_SIZE=128M (per file), --env BENCH_DELAY=2ms (each way),
# --env BENCH_TOOLS="cachectl cat dd" (a subset, in that order), --env BENCH_MOUNT=fsc|plain|both,
# --env BENCH_COLD_ROUNDS=N (N fresh files per tool, read cold in N rounds, the
# order rotated), --env BENCH_CACHE_ROUNDS=N (read the first round's files from
# FS-Cache N times, the order rotated; the summary gives medians and the median of
# each round's cachectl over the best of cat and dd in that round; a re-read that
# sent READs to the server is reported as phase "refetched"), --env BENCH_NCONNECT="1 4 8"
# (NFS only; instead: each nconnect in turn, both mounts made again with it,
# BENCH_TOOLS each on a fresh file; cold only), --env BENCH_STACKS=1 (sample the kernel
# stacks of every task in uninterruptible sleep during each run, five times a
# second, and print the most common ones: where readers wait).
# Tool "runai" is Run:ai's Model Streamer in buffered mode (16 x 2 MiB,
# RUNAI_STREAMER_FS_STRATEGY=sync_buffered: through the page cache, so it fills
# FS-Cache as the others do), from the venv integration/benchmarks/warm/run makes
# (/var/tmp/cachectl-runai-venv); its own streaming time is what is recorded.
# requires: cachectl
# timeout: 3600
# memory: 10240
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
size=${BENCH_SIZE:-128M}
bytes=$(numfmt --from=iec "$size")
delay=${BENCH_DELAY:-2ms}
which_mount=${BENCH_MOUNT:-both}
fs=${BENCH_FS:-nfs}
[[ $fs == nfs || $fs == cifs ]] || die "BENCH_FS is nfs or cifs"
[[ $fs == nfs || -z ${BENCH_NCONNECT:-} ]] || die "BENCH_NCONNECT is for NFS only"
quarter=$((bytes / 4))
# tool name -> command; FILE is replaced by the tool's own file.
declare -A tools=(
  [cachectl]="cachectl warm --quiet FILE"
  [cachectl-j1]="cachectl warm --quiet --jobs 1 --chunk 16M FILE"
  [cachectl-j1-1m]="cachectl warm --quiet --jobs 1 --chunk 1M FILE"
  [cachectl-j1-128k]="cachectl warm --quiet --jobs 1 --chunk 128K FILE"
  [cachectl-j4]="cachectl warm --quiet --jobs 4 FILE"
  [cachectl-j1-4m]="cachectl warm --quiet --jobs 1 --chunk 4M FILE"
  [cachectl-seq16]="cachectl warm --quiet --jobs 1 --chunk 16M --layout contiguous --no-hints FILE"
  [cachectl-c4]="cachectl warm --quiet --jobs 4 --chunk 1M --layout contiguous --no-hints FILE"
  [cachectl-c4-4m]="cachectl warm --quiet --jobs 4 --chunk 4M --layout contiguous --no-hints FILE"
  [cachectl-i32]="cachectl warm --quiet --jobs 32 --chunk 2M --layout interleaved --hints FILE"
  [cachectl-hints]="cachectl warm --quiet --hints FILE"
  [cachectl-copy]="cachectl warm --quiet --transfer copy FILE"
  [cat]="cat FILE >/dev/null"
  [dd]="dd if=FILE of=/dev/null bs=16M status=none"
  [dd4-contiguous]="dd4 FILE"
  [fio]="fio --name=warm --filename=FILE --rw=read --bs=1M --ioengine=psync --numjobs=4 --size=$quarter --offset_increment=$quarter --group_reporting --output=/dev/null"
  [vmtouch]="vmtouch -q -t -m 1024G FILE"
  [runai]="runai FILE"
)
runai_python=/var/tmp/cachectl-runai-venv/bin/python3
read -ra order <<<"${BENCH_TOOLS:-cachectl cat dd cachectl-j1 cachectl-j4 dd4-contiguous fio cachectl-hints vmtouch}"
for t in "${order[@]}"; do [[ -n ${tools[$t]:-} ]] || die "unknown tool $t (known: ${!tools[*]})"; done
if [[ " ${order[*]} " == *" runai "* ]]; then
  [[ -x $runai_python ]] || die "tool runai needs $runai_python (integration/benchmarks/warm/run installs it)"
fi
cache_rounds=${BENCH_CACHE_ROUNDS:-1} cold_rounds=${BENCH_COLD_ROUNDS:-1}
[[ $cache_rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_CACHE_ROUNDS must be a positive number"
[[ $cold_rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_COLD_ROUNDS must be a positive number"

# shellcheck disable=SC2317 # dd4 and runai run through eval
# dd4 FILE: four dd readers, each streaming its own quarter (the contiguous layout).
dd4() {
  local i pids=()
  for i in 0 1 2 3; do
    dd if="$1" of=/dev/null bs=1M skip=$((i * quarter / 1048576)) count=$((quarter / 1048576)) status=none &
    pids+=($!)
  done
  wait "${pids[@]}"  # not a bare wait: cachefilesd is a child of this shell too
}
# runai FILE: prints "SECONDS CPU", its own streaming time (the buffer is touched first).
runai() {
  RUNAI_STREAMER_FS_STRATEGY=sync_buffered RUNAI_STREAMER_CONCURRENCY=16 RUNAI_STREAMER_CHUNK_BYTESIZE=2097152 \
    "$runai_python" "$(dirname "$0")/../benchmarks/warm/runai_stream.py" "$1"
}

# The binary comes over 9p from the host: copy it to RAM once, so no timed run
# pays for loading it (drop_caches below would evict it again).
mkdir -p /run/bench-bin
cp "$(command -v cachectl)" /run/bench-bin/cachectl
export PATH=/run/bench-bin:$PATH
# load_tools: every tool once, so its binary and libraries (9p, evicted by
# drop_caches) are in RAM before a timed run.
load_tools() {
  cachectl --version; cat /dev/null; dd --version; fio --version; vmtouch -h; bc </dev/null; jq --version
  if [[ -x $runai_python ]]; then head -c 4096 /dev/zero >/tmp/runai-load && runai /tmp/runai-load; fi  # python, the venv, libstreamer
} >/dev/null 2>&1
load_tools
# evict_all: drop the page cache (the next read of a file on the fsc mount is served
# by FS-Cache), load the tools again, then write and free four files' worth of RAM.
# Without that last step, one timed run after each drop_caches took 1.4-2.6 s where
# the others took 0.5-0.9 (6.1, 64 MiB, in 16 of 18 rounds: the first or the second
# run, whichever tool it was), and with it they were gone; one file's worth was not
# enough on 6.12 with CIFS (runs of every tool still spread 0.35-1.86 s; with four,
# 0.35-0.83). Likely QEMU's TCG: the pages drop_caches freed held code it had
# translated, and the first write into each takes a slow path once (not proven).
# Every from-cache run starts from this state, so no tool pays for another's place
# in the order.
evict_all() {
  drop_caches
  load_tools
  head -c "$((4 * bytes))" /dev/zero >/dev/shm/settle
  rm -f /dev/shm/settle
}
load_modules zram sch_netem
read -ra nconnects <<<"${BENCH_NCONNECT:-}"
runs=$(( ${#order[@]} * (${#nconnects[@]} > 0 ? ${#nconnects[@]} : cold_rounds) ))
cache_mb=$(( (runs * bytes / 1048576) * 5 / 4 + 128 ))
make_zram_ext4 /var/cache/fscache "${cache_mb}M" >/dev/null
write_cachefilesd_conf /etc/cachefilesd.conf /var/cache/fscache
start_cachefilesd /etc/cachefilesd.conf || die "cachefilesd"
export_dir=/srv/export
mounts=(fsc plain)
case $which_mount in fsc) mounts=(fsc) ;; plain) mounts=(plain) ;; both) ;; *) die "BENCH_MOUNT is fsc, plain or both" ;; esac
make_export_dir "$export_dir" "$(( (runs * ${#mounts[@]} + 1) * bytes / 1048576 + 64 ))M"
for m in fsc plain; do
  mkdir -p "$export_dir/$m"
  [[ " ${mounts[*]} " == *" $m "* ]] || continue  # each mount reads its own directory
  for t in "${order[@]}"; do
    for n in "${nconnects[@]:-}"; do
      for ((round = 0; round < cold_rounds; round++)); do
        name=$t${n:+-n$n}.bin
        if ((round > 0)); then name=$t-r$round.bin; fi  # BENCH_NCONNECT runs one round
        head -c "$bytes" /dev/urandom >"$export_dir/$m/$name" || die "write $name"
      done
    done
  done
done
# ceiling.bin: read only with O_DIRECT, which skips the page cache and FS-Cache: what
# the server and the link give at most (the cold phase's ceiling).
head -c "$bytes" /dev/urandom >"$export_dir/fsc/ceiling.bin" || die "write ceiling.bin"
# probe.bin: read once before the runs, to show which strategy cachectl picks there.
head -c 1048576 /dev/urandom >"$export_dir/fsc/probe.bin" || die "write probe.bin"
if [[ $fs == nfs ]]; then
  start_nfs_server "$export_dir"
  mount_nfs /mnt/fsc "rsize=1048576,fsc"
  # A different option set gives a separate superblock: the plain mount's reads
  # never touch FS-Cache.
  mount_nfs /mnt/plain "rsize=1048576,nosharecache"
else
  # Two shares of one directory: two tree connections, so two superblocks (the
  # plain one never touches FS-Cache) and a Stats block each. noatime: tmpfs has
  # no birth time, so Samba reports the oldest of atime, mtime and ctime as the
  # file's creation time, and the client keys its FS-Cache object by that time
  # (cifs_fscache_inode_key). The first read would move atime past mtime, change
  # the creation time, and the next open would find a new, empty cache object.
  mount -o remount,noatime "$export_dir" || die "remount $export_dir noatime"
  start_samba "$export_dir" fsc plain
  mount_cifs /mnt/fsc fsc fsc
  mount_cifs /mnt/plain "" plain
fi
for m in fsc plain; do
  log "$m mount: $(findmnt -no FSTYPE,OPTIONS "/mnt/$m" | sed 's/[ ,]/\n/g' | grep -E '^(nfs4|cifs|fsc|rsize|vers|nosharecache|cache)' | tr '\n' ' ')" \
    "read_ahead_kb $(cat "/sys/class/bdi/$(mountpoint -d "/mnt/$m")/read_ahead_kb" 2>/dev/null || echo '?')"
done
tc qdisc add dev lo root netem delay "$delay" || die "netem on lo"
log "lo: $(tc qdisc show dev lo)"
log "kernel $(uname -r); FS-Cache counters count $(fscache_unit)"
log "cachectl warm on the fsc mount reads as: $(cachectl warm --json /mnt/fsc/fsc/probe.bin | jq -c '.strategies')"

# nfs_read_rtt MOUNT: total READ round-trip milliseconds since the mount
# (mountstats per-op line: ops trans timeouts bytes_sent bytes_recv queue rtt execute).
nfs_read_ms() {
  awk -v mnt="$1" -v col="$2" '
    $1 == "device" { inside = ($5 == mnt) }
    inside && ($1 == "READ:" || $1 == "READ_PLUS:") { n += $col }
    END { printf "%.0f\n", n }' /proc/self/mountstats
}
# read_ops / read_bytes MOUNT (fsc or plain): READ requests sent to the server
# through that mount, and the bytes they returned.
read_ops() { if [[ $fs == nfs ]]; then nfs_mountstat "/mnt/$1" read_ops; else cifs_sharestat "$1" reads; fi; }
read_bytes() { if [[ $fs == nfs ]]; then nfs_mountstat "/mnt/$1" server_read_bytes; else cifs_sharestat "$1" server_read_bytes; fi; }
read_ms() { if [[ $fs == nfs ]]; then nfs_read_ms "/mnt/$1" "$2"; else echo 0; fi; }  # CIFS has no per-op times
# On 6.4+ /proc/fs/fscache is a link to /proc/fs/netfs: the same file, read once.
netfs_stats() { if [[ -r /proc/fs/netfs/stats && ! /proc/fs/netfs/stats -ef /proc/fs/fscache/stats ]]; then cat /proc/fs/netfs/stats; fi; }
# counters_diff BEFORE AFTER: the name=value pairs that changed, "name +delta".
counters_diff() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def parse(text):
    out = {}
    for line in text.splitlines():
        if ":" not in line: continue
        label, rest = line.split(":", 1)
        for k, v in re.findall(r"(\w+)=(-?\d+)", rest):
            out[f"{label.strip()}.{k}"] = int(v)
    return out
a, b = parse(sys.argv[1]), parse(sys.argv[2])
print(" ".join(f"{k}+{b[k] - a.get(k, 0)}" for k in b if b[k] != a.get(k, 0)))
PY
}

# sample_stacks OUT: until killed, the top frames of every task in D state.
sample_stacks() {
  local status stack
  while :; do
    for status in /proc/[0-9]*/task/[0-9]*/status; do
      grep -q '^State:.*D' "$status" 2>/dev/null || continue
      stack=$(head -6 "${status%status}stack" 2>/dev/null | awk '{print $2}' | sed 's/+0x.*//' | paste -sd' ')
      echo "$(awk '/^Name:/ {print $2}' "$status") $stack"
    done >>"$1"
    sleep 0.2
  done
}

# median_secs N COMMAND...: runs COMMAND N times, its output discarded (its errors go
# to this function's stderr), and prints the median wall time in seconds; returns 1
# when any run failed.
median_secs() {
  local n=$1 i start end failed=0 times=()
  shift
  for ((i = 0; i < n; i++)); do
    start=$(date +%s.%N)
    "$@" >/dev/null || failed=1
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((n + 1) / 2))p"
  return "$failed"
}

# startup_cost FILE: median seconds of 5 runs of `cachectl --version`, then of
# each tool on FILE while it is resident in the page cache (no read reaches the
# server or FS-Cache; cachectl reads nothing then, cat and dd copy it again).
startup_cost() {
  local t cmd
  for t in version "${order[@]}"; do
    cmd=${tools[$t]:-cachectl --version} cmd=${cmd//FILE/$1}
    printf '%s %s  ' "$t" "$(median_secs 5 eval "$cmd" 2>/dev/null)"
  done
}

# cache_mib: MiB of file data cachefiles holds on its disk (what was written to FS-Cache).
cache_mib() { du -sm /var/cache/fscache/cache 2>/dev/null | cut -f1; }

results=/tmp/warm-bench-fsc.tsv
: >"$results"
# ceiling PHASE FILE: the median of three O_DIRECT reads of FILE in 16 MiB pieces
# (neither the page cache nor FS-Cache), a row of tool "ceiling" for PHASE: cold, a
# file on the mount (the server and the link: the NFS client sends a piece's READs
# at once); from-cache, a file of cachefiles' own on the cache's disk.
ceiling() {
  local secs
  if ! secs=$(median_secs 3 dd if="$2" of=/dev/null bs=16M iflag=direct status=none 2>/tmp/ceiling.err); then
    log "no $1 ceiling: O_DIRECT read of $2 failed: $(head -1 /tmp/ceiling.err)"
    return 0
  fi
  printf '%s\tfsc\tceiling\t%.2f\t0\t0\t0/0\t0\t\t-\n' "$1" "$secs" | tee -a "$results"
}
# run_tool PHASE MOUNT TOOL: one timed run, with the counters around it.
run_tool() {
  local phase=$1 m=$2 t=$3 file=/mnt/$2/$2/$3${nconnect:+-n$nconnect}${cold_round:+-r$cold_round}.bin cmd
  cmd=${tools[$t]//FILE/$file}
  local ops0 bytes0 rtt0 exe0 fs0 nf0 start end ops1 bytes1 rtt1 exe1 resident
  ops0=$(read_ops "$m") bytes0=$(read_bytes "$m") rtt0=$(read_ms "$m" 8) exe0=$(read_ms "$m" 9)
  fs0=$(cat /proc/fs/fscache/stats) nf0=$(netfs_stats)
  local sampler=""
  if [[ -n ${BENCH_STACKS:-} ]]; then
    : >/tmp/stacks.txt
    sample_stacks /tmp/stacks.txt &
    sampler=$!
  fi
  start=$(date +%s.%N)
  eval "$cmd" >/tmp/tool.out || log "$t exited $?"
  end=$(date +%s.%N)
  if [[ -n $sampler ]]; then
    kill "$sampler"; wait "$sampler" 2>/dev/null
    echo "  $phase $m $t: tasks in D state, $(wc -l </tmp/stacks.txt) samples; most common (count, task, top frames):"
    sed 's/^\(kworker\|cachectl-warm\)[^ ]*/\1/' /tmp/stacks.txt | sort | uniq -c | sort -rn | head -6 | sed 's/^/    /'
  fi
  ops1=$(read_ops "$m") bytes1=$(read_bytes "$m") rtt1=$(read_ms "$m" 8) exe1=$(read_ms "$m" 9)
  resident=$(cachectl residency --json "$file" | jq -r '.total.percent | floor')
  local secs ops kib
  secs=$(echo "$end - $start" | bc)
  if [[ $t == runai ]]; then read -r secs _ </tmp/tool.out; fi  # its own streaming time
  ops=$((ops1 - ops0))
  # A re-read that went to the server was not served by FS-Cache: report it apart.
  if [[ $phase == from-cache ]] && ((ops > 2)); then phase=refetched; fi
  kib=$(( ops > 0 ? (bytes1 - bytes0) / ops / 1024 : 0 ))
  printf '%s\t%s\t%s\t%.2f\t%d\t%d\t%s\t%s\t%s\t%s\n' "$phase" "$m" "$t" "$secs" "$ops" "$kib" \
    "$(( ops > 0 ? (rtt1 - rtt0) / ops : 0 ))/$(( ops > 0 ? (exe1 - exe0) / ops : 0 ))" "$resident" \
    "$(counters_diff "$fs0" "$(cat /proc/fs/fscache/stats)") $(counters_diff "$nf0" "$(netfs_stats)")" \
    "${round:-0}" | tee -a "$results"
}

echo "phase	mount	tool	seconds	${fs^^}_READs	KiB/READ	rtt/exe_ms	resident%	counters	round"
nconnect=""
if [[ ${#nconnects[@]} -gt 0 ]]; then
  for nconnect in "${nconnects[@]}"; do
    umount /mnt/fsc /mnt/plain || die "umount"
    mount_nfs /mnt/fsc "rsize=1048576,fsc,nconnect=$nconnect"
    mount_nfs /mnt/plain "rsize=1048576,nosharecache,nconnect=$nconnect"
    log "nconnect $nconnect: $(findmnt -no OPTIONS /mnt/plain | grep -o 'nconnect=[0-9]*' || echo 'nconnect not shown')"
    for m in "${mounts[@]}"; do
      for t in "${order[@]}"; do run_tool "cold-n$nconnect" "$m" "$t"; done
    done
  done
  mounts=()
fi
n=${#order[@]}
for ((round = 0; round < cold_rounds; round++)); do
  cold_round=""
  if ((round > 0)); then cold_round=$round; fi
  for m in "${mounts[@]}"; do
    for ((i = 0; i < n; i++)); do run_tool cold "$m" "${order[(i + round) % n]}"; done
  done
done
cold_round=""
if ((${#mounts[@]} > 0)); then ceiling cold /mnt/fsc/fsc/ceiling.bin; fi
if [[ " ${mounts[*]} " == *" fsc "* ]]; then
  # Let cachefiles finish writing, then read everything again from FS-Cache.
  log "fixed cost, seconds (version: cachectl --version; the tools: on a resident file): $(startup_cost "/mnt/fsc/fsc/${order[0]}.bin")"
  sync; sleep 5
  log "FS-Cache holds $(cache_mib) MiB after the cold runs"
  for ((round = 0; round < cache_rounds; round++)); do
    if ((round > 0)); then sync; log "FS-Cache holds $(cache_mib) MiB"; fi
    for ((i = 0; i < n; i++)); do evict_all; run_tool from-cache fsc "${order[(i + round) % n]}"; done
  done
  # Every cache file holds one whole file (BENCH_SIZE); the largest is one of them.
  ceiling from-cache "$(find /var/cache/fscache/cache -type f -printf '%s %p\n' | sort -rn | head -1 | cut -d' ' -f2-)"
fi
tc qdisc del dev lo root 2>/dev/null || true

python3 - "$results" "$size" "$fs, kernel $(uname -r)" "$bytes" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
gib = int(sys.argv[4]) / 2**30
ceilings = {r[0]: float(r[3]) for r in rows if r[2] == "ceiling"}  # phase -> seconds
rows = [r for r in rows if r[2] != "ceiling"]
print(f"\nsummary, {sys.argv[3]}, {sys.argv[2]} per file (seconds, the median where a phase ran more than once;"
      " ratios against the best of cat and dd in the same phase and mount)")
peers = ("cat", "dd")
for phase in dict.fromkeys(r[0] for r in rows):
    for mount in dict.fromkeys(r[1] for r in rows if r[0] == phase):
        runs, by_round = {}, {}  # tool -> seconds of each run; round (last column) -> tool -> seconds
        for r in rows:
            if r[0] == phase and r[1] == mount:
                runs.setdefault(r[2], []).append(float(r[3]))
                by_round.setdefault(r[9], {})[r[2]] = float(r[3])
        sel = {k: statistics.median(v) for k, v in runs.items()}
        best = min(v for k, v in sel.items() if k in peers) if any(k in sel for k in peers) else None
        cells = "  ".join(f"{k} {v:.2f}" + (f" ({v / best:.2f}x)" if best else "") for k, v in sel.items())
        print(f"{phase:>10} {mount:>5}: {cells}")
        ceiling = ceilings.get(phase)
        if ceiling:
            rates = "  ".join(f"{k} {gib / v:.3f} ({ceiling / v:.0%})" for k, v in sel.items())
            print(f"{'':>16} GiB/s (of the ceiling): {rates}; ceiling {gib / ceiling:.3f}")
        # Paired: each round's cachectl against the best of cat and dd in the same
        # round, so a slow round counts against every tool in it rather than moving
        # one tool's median.
        ratios = [t["cachectl"] / min(t[k] for k in peers if k in t)
                  for t in by_round.values() if "cachectl" in t and any(k in t for k in peers)]
        n = len(ratios)
        if n > 1:
            wins = sum(r <= 1 for r in ratios)
            # The faster of two peers each round is a lower bar than either peer: a
            # reader that does the same work as one of them shows as a tie only here.
            per_peer = {k: [t["cachectl"] / t[k] for t in by_round.values() if "cachectl" in t and k in t]
                        for k in peers}
            each = "  ".join(f"{k} {statistics.median(v):.2f}x" for k, v in per_peer.items() if v)
            print(f"{'':>16} paired, {n} rounds: cachectl / best of cat and dd median "
                  f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}), "
                  f"<= 1 in {wins} of {n}; against each: {each}")
PY
_pass "benchmark ran"
finish
