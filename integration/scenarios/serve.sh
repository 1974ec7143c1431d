#!/bin/bash
# cachectl serve under systemd: install-units writes cachectl-serve.service, which
# starts and answers on 127.0.0.1:5050 (systemd-units verifies the unit):
#   GET /api/status says what `cachectl status --json` says (tiers, models, shares);
#   POST /api/tiers creates a tmpfs tier as a job, and the tier is mounted in the
#     machine's mount namespace (the unit must not have one of its own);
#   a cross-origin POST is refused (403) and logged in the unit's journal.
# (The chart from real FS-Cache counters is checked in `boot`, after the reboot,
# where the share, the cache and the read are there anyway.)
# kernels: 6.12 (nothing here depends on the kernel; one run is enough)
# init: systemd
# requires: cachectl
# timeout: 240
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
systemctl stop cachectl-serve.service
finish
