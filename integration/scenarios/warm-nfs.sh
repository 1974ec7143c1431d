#!/bin/bash
# `cachectl warm` on a model directory on an NFS mount with `fsc`: the files end
# up 100% resident in the page cache (guest kernel 6.1 has no cachestat, so
# residency is measured with mincore), the read also filled FS-Cache (IO wr), and
# after drop_caches warming again is served from FS-Cache (IO rd), byte-exact.
# requires: cachectl
# timeout: 300
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

wr0=$(fscache_counter IO wr)
log "cachectl warm $dir --json"
cachectl warm "$dir" --json >/tmp/warm.json
warm_rc=$?
sed 's/^/    /' /tmp/warm.json; echo
expect_eq "cachectl warm exit status" 0 "$warm_rc"
expect_eq "warm: failed" false "$(json_get /tmp/warm.json '.failed')"
expect_eq "warm: residency_percent" 100 "$(json_get /tmp/warm.json '.residency_percent')"
expect_ge "warm: bytes_read (cold files must be read)" "$(json_get /tmp/warm.json '.bytes_read')" $((size * 9 / 10))

cachectl residency "$dir" --json >/tmp/residency.json
expect_eq "cachectl residency exit status" 0 "$?"
expect_eq "residency: total.percent" 100 "$(json_get /tmp/residency.json '.total.percent')"
expect_eq "residency: total.files" "$files" "$(json_get /tmp/residency.json '.total.files')"
expect_eq "residency: total.size" "$size" "$(json_get /tmp/residency.json '.total.size')"
expect_eq "residency: total.resident" "$size" "$(json_get /tmp/residency.json '.total.resident')"
# 6.1 has no cachestat(2): every non-empty file must have been measured by mincore.
expect_eq "residency: method of every non-empty file" '["mincore"]' \
  "$(json_get /tmp/residency.json '[.files[] | select(.size > 0) | .method] | unique | tojson')"

sleep 1 # cachefiles writes behind the read
wr1=$(fscache_counter IO wr)
log "IO wr: $wr0 -> $wr1 (model is $pages pages)"
expect_ge "warming wrote the model into FS-Cache (IO wr delta, pages)" $((wr1 - wr0)) $((pages * 9 / 10))

drop_caches
rd0=$(fscache_counter IO rd)
cachectl warm "$dir" --json >/tmp/warm2.json
expect_eq "second cachectl warm exit status" 0 "$?"
rd1=$(fscache_counter IO rd)
log "IO rd: $rd0 -> $rd1"
expect_eq "second warm: residency_percent" 100 "$(json_get /tmp/warm2.json '.residency_percent')"
expect_ge "after drop_caches the data came from FS-Cache (IO rd delta, pages)" $((rd1 - rd0)) $((pages * 9 / 10))
expect_cmd "the cached copy is byte-exact" diff -r "$src" "$dir"

finish
