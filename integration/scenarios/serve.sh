#!/bin/bash
# cachectl serve under systemd: install-units writes cachectl-serve.service, which
# starts and answers on 127.0.0.1:5050 (systemd-units verifies the unit):
#   GET /api/status says what `cachectl status --json` says (tiers, models, shares);
#   POST /api/tiers creates a tmpfs tier as a job, and the tier is mounted in the
#     machine's mount namespace (the unit must not have one of its own);
#   a cross-origin POST is refused (403) and logged in the unit's journal;
#   the chart's own sampling sees a real FS-Cache write: after a first read through
#     an NFS mount with fsc, /api/history's cache-write counter rose (in 6.12's unit,
#     operations) and the page's chart says its peak in that unit.
# kernels: 6.12 (what is kernel-specific here, the counters' layout and unit, is
#   CacheTraffic's, proven on both kernels by fscache-smoke and the parser fixtures)
# init: systemd
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

api=http://127.0.0.1:5050
cachectl install-units >/dev/null || die "install-units"
systemctl start cachectl-serve.service || die "start cachectl-serve: $(journalctl -u cachectl-serve --no-pager | tail -5)"
for ((i = 0; i < 100; i++)); do curl -sf "$api/api/status" -o /tmp/api-status.json && break; sleep 0.2; done
expect_eq "cachectl-serve.service active" active "$(systemctl is-active cachectl-serve)"
expect_cmd "GET /api/status answers JSON" jq -e .tiers /tmp/api-status.json

# The same library call as the CLI: the same tiers, models and shares.
cachectl status --json >/tmp/cli-status.json
pick='{tiers: [.tiers[].name], models: [.models[].name], shares: [.shares[].mountpoint], cache: .cache.config_path}'
expect_eq "/api/status matches status --json" "$(jq -cS "$pick" /tmp/cli-status.json)" "$(jq -cS "$pick" /tmp/api-status.json)"

# A tier created through the API is seen by everything else.
curl -s -X POST -H 'Content-Type: application/json' -d '{"name":"vmfast","type":"tmpfs","size":"64M"}' "$api/api/tiers" >/tmp/job.json
id=$(json_get /tmp/job.json .job.id)
for ((i = 0; i < 100; i++)); do
  state=$(curl -s "$api/api/jobs/$id" | jq -r .state)
  [[ $state == running ]] || break
  sleep 0.2
done
expect_eq "tier-create job succeeded" succeeded "$state"
expect_eq "the tier is mounted in the machine's namespace" tmpfs "$(findmnt -n -o FSTYPE /run/cachectl/tiers/vmfast)"
expect_eq "GET /api/tiers lists it" vmfast "$(curl -s "$api/api/tiers" | jq -r '.tiers[0].name')"

# Another site's page cannot change anything.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' "$api/api/tiers/vmfast/destroy")
expect_eq "cross-origin POST refused" 403 "$code"
expect_eq "the tier is still there" tmpfs "$(findmnt -n -o FSTYPE /run/cachectl/tiers/vmfast)"
expect_match "the refusal is in the journal" 'refused POST /api/tiers/vmfast/destroy' "$(journalctl -u cachectl-serve --no-pager)"

curl -s -X POST "$api/api/tiers/vmfast/destroy" >/dev/null
for ((i = 0; i < 50; i++)); do findmnt /run/cachectl/tiers/vmfast >/dev/null || break; sleep 0.2; done
expect_eq "destroyed through the API" "" "$(findmnt -n -o FSTYPE /run/cachectl/tiers/vmfast)"
# The chart, from real counters: an NFS share with fsc, read once (the cache writes
# what it downloads), then sampled by the server (every 10 s by default).
mkdir -p /persist/export /persist/fscache /mnt/models
make_file /persist/export/model.gguf 8
echo "/persist/export 127.0.0.1(ro,sync,no_subtree_check,no_root_squash,insecure,fsid=0)" >/etc/exports
{ systemctl start nfs-server.service && exportfs -ra; } >/dev/null 2>&1 || die "nfs-server did not start"
cachectl cache setup --dir /persist/fscache >/dev/null 2>&1 || die "cache setup: $(cachectl cache setup --dir /persist/fscache 2>&1 | tail -3)"
mount -t nfs4 -o ro,vers=4.2,fsc 127.0.0.1:/ /mnt/models || die "mount the share with fsc"
expect_eq "the share has FS-Cache" yes "$(nfs_volume_fsc)"
first=$(curl -s "$api/api/history" | jq '[.samples[].cacheWrites // 0] | max')
read_through /mnt/models/model.gguf
for ((i = 0; i < 150; i++)); do
  curl -s "$api/api/history" -o /tmp/history.json
  (($(jq '[.samples[].cacheWrites // 0] | max' /tmp/history.json) > first)) && break
  sleep 0.2
done
log "history: $(jq -c '{unit, layout, n: (.samples | length), writes: [.samples[-2:][].cacheWrites]}' /tmp/history.json)"
expect_gt "/api/history: cache writes rose after the read" "$(jq '[.samples[].cacheWrites // 0] | max' /tmp/history.json)" "$first"
expect_eq "/api/history says its unit" operations "$(json_get /tmp/history.json .unit)"
curl -s "$api/" >/tmp/page.html
expect_match "the page's chart is labelled in that unit" 'peak [0-9]+ operations per 10 s' "$(cat /tmp/page.html)"
# The writes line (red) leaves the chart's baseline (y = 136) where the read wrote.
writes=$(grep -o 'stroke="#d62728" stroke-width="2" points="[^"]*"' /tmp/page.html | sed 's/.*points="//; s/"$//')
expect_gt "the chart's writes line rises above its baseline" "$(tr ' ' '\n' <<<"$writes" | awk -F, 'NF == 2 && $2 < 136 { n++ } END { print n + 0 }')" 0
umount /mnt/models
systemctl stop cachectl-serve.service
finish
