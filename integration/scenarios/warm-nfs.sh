#!/bin/bash
# `cachectl warm` on a model directory on an NFS mount with `fsc`: the files end
# up 100% resident in the page cache (guest kernel 6.1 has no cachestat, so
# residency: mincore on 6.1, cachestat on 6.12), the read also filled FS-Cache
# (cache writes rose), and after drop_caches warming again is served from
# FS-Cache (NFS READs and server bytes stay near zero), byte-exact.
# requires: cachectl
# timeout: 300
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
log "cachectl: $(command -v cachectl)"

load_modules zram
make_zram_ext4 /var/cache/fscache 512M >/dev/null
write_cachefilesd_conf /etc/cachefilesd.conf /var/cache/fscache
start_cachefilesd /etc/cachefilesd.conf || die "cachefilesd did not start"

# A model directory shaped like the real thing: GGUF shards, small JSON files,
# and a nested blob directory (ollama-style).
export_dir=/srv/export
make_export_dir "$export_dir" 256M
src=$export_dir/llama-test
mkdir -p "$src/blobs"
make_file "$src/model-00001-of-00003.gguf" 8
make_file "$src/model-00002-of-00003.gguf" 8
make_file "$src/model-00003-of-00003.gguf" 5
make_file "$src/blobs/sha256-3f1e" 3
head -c 3000 /dev/urandom | base64 >"$src/tokenizer.json"
echo '{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}' >"$src/config.json"
echo '# test model' >"$src/README.md"
: >"$src/empty.txt"
files=$(find "$src" -type f | wc -l)
size=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
pages=$((size / 4096))
log "model dir: $files files, $size bytes"

start_nfs_server "$export_dir"
mount_nfs /mnt/models ro,fsc
expect_eq "/proc/fs/nfsfs/volumes FSC column" yes "$(nfs_volume_fsc)"
dir=/mnt/models/llama-test

drop_caches
cachectl residency "$dir" --json >/tmp/residency-cold.json || die "cachectl residency (cold) failed: $(cat /tmp/residency-cold.json)"
cold=$(json_get /tmp/residency-cold.json '.total.percent < 100')
expect_eq "cold directory is not fully resident, so the 100% below means something" true "$cold"

wr0=$(fscache_cache_writes)
reads0=$(nfs_mountstat /mnt/models read_ops) bytes0=$(nfs_mountstat /mnt/models server_read_bytes)
log "cachectl warm $dir --json"
cachectl warm "$dir" --json >/tmp/warm.json
warm_rc=$?
sed 's/^/    /' /tmp/warm.json; echo
expect_eq "cachectl warm exit status" 0 "$warm_rc"
expect_eq "warm: failed" false "$(json_get /tmp/warm.json '.failed')"
expect_eq "warm: residency_percent" 100 "$(json_get /tmp/warm.json '.residency_percent')"
expect_ge "warm: bytes_read (cold files must be read)" "$(json_get /tmp/warm.json '.bytes_read')" $((size * 9 / 10))
# Readers splice through a pipe sized to their piece, so the NFS client sees
# requests as large as pread's and sends READs of rsize; through sendfile's own
# 64 KiB pipe they were 113-127 KiB (README, "Why these defaults").
rsize=$(findmnt -no OPTIONS /mnt/models | tr , '\n' | sed -n 's/^rsize=//p')
reads=$(( $(nfs_mountstat /mnt/models read_ops) - reads0 ))
read_bytes=$(( $(nfs_mountstat /mnt/models server_read_bytes) - bytes0 ))
log "the cold warm sent $reads READs for $read_bytes bytes (rsize $rsize; strategy: $(json_get /tmp/warm.json .strategy))"
expect_ge "average READ of the cold warm, bytes (at least 3/4 of the rsize)" $(( read_bytes / (reads > 0 ? reads : 1) )) $(( rsize * 3 / 4 ))

cachectl residency "$dir" --json >/tmp/residency.json
expect_eq "cachectl residency exit status" 0 "$?"
expect_eq "residency: total.percent" 100 "$(json_get /tmp/residency.json '.total.percent')"
expect_eq "residency: total.files" "$files" "$(json_get /tmp/residency.json '.total.files')"
expect_eq "residency: total.size" "$size" "$(json_get /tmp/residency.json '.total.size')"
expect_eq "residency: total.resident" "$size" "$(json_get /tmp/residency.json '.total.resident')"
# cachestat(2) came in 6.5: 6.1 measures every non-empty file with mincore, 6.12 with cachestat.
if [[ $CACHECTL_VM_KERNEL == 6.1 ]]; then method=mincore; else method=cachestat; fi
expect_eq "residency: method of every non-empty file" "[\"$method\"]" \
  "$(json_get /tmp/residency.json '[.files[] | select(.size > 0) | .method] | unique | tojson')"

sleep 1 # cachefiles writes behind the read
wr1=$(fscache_cache_writes)
log "cache writes ($(fscache_unit)): $wr0 -> $wr1 (model is $pages pages)"
if [[ $(fscache_unit) == pages ]]; then min=$((pages * 9 / 10)); else min=1; fi
expect_ge "warming wrote the model into FS-Cache (cache writes, $(fscache_unit))" $((wr1 - wr0)) $min

drop_caches
# shellcheck disable=SC2317 # called by expect_read_from_fscache
warm_again() { cachectl warm "$dir" --json >/tmp/warm2.json; }
expect_read_from_fscache "second warm after drop_caches" /mnt/models warm_again
expect_eq "second warm: residency_percent" 100 "$(json_get /tmp/warm2.json '.residency_percent')"
expect_cmd "the cached copy is byte-exact" diff -r "$src" "$dir"

finish
