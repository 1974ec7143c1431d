#!/bin/bash
# The YAML plan across two machines (what the Ansible role runs on each host,
# without Ansible and SSH): the server's file exports 1 GiB of RAM to the
# client's NQN; the client's file has an nvmeof tier that names that export and
# a model pinned to it. First apply changes, the second is changed:false,
# --check changes nothing; `state: absent` gives it all back (client: demote,
# unmount, disconnect; server: no configfs entries left).
# pair: server client
# kernels: 6.1+
# requires: cachectl
# timeout: 600
. "$(dirname "$0")/lib.sh"

export CACHECTL_TIERS_STATE=/tmp/cachectl/tiers.json
CFS=/sys/kernel/config/nvmet
j=/tmp/json
mkdir -p "$j" /etc/cachectl
mount_configfs

# apply_three NAME: apply (changes), apply (changed:false), apply --check (changes nothing).
apply_three() {
  cachectl apply -f /etc/cachectl/cachectl.yaml --json >"$j/$1-1.json" || die "apply: $(head -c 2000 "$j/$1-1.json")"
  expect_eq "$1: first apply changed" true "$(json_get "$j/$1-1.json" .changed)"
  cachectl apply -f /etc/cachectl/cachectl.yaml --json >"$j/$1-2.json" || die "second apply: $(head -c 2000 "$j/$1-2.json")"
  expect_eq "$1: second apply changed" false "$(json_get "$j/$1-2.json" .changed)"
  cachectl apply -f /etc/cachectl/cachectl.yaml --check --json >"$j/$1-3.json" || die "apply --check: $(head -c 2000 "$j/$1-3.json")"
  expect_eq "$1: apply --check changed" false "$(json_get "$j/$1-3.json" .changed)"
}

if [[ $(role) == server ]]; then
  write_server() {
    cat >/etc/cachectl/cachectl.yaml <<YAML
version: 1
nvmeof:
  exports:
    - name: lend
      size: 1G
      address: 10.77.0.1
      allowed_hosts: [nqn.2014-08.org.cachectl:client]
      state: $1
YAML
  }
  write_server present
  apply_three server
  expect_eq "only the client is allowed" nqn.2014-08.org.cachectl:client "$(ls "$CFS/subsystems/nqn.2014-08.org.cachectl:lend/allowed_hosts")"
  pair_signal exported
  pair_wait client-done 900 >/dev/null
  write_server absent
  apply_three server-absent
  expect_nvmet_empty
  finish
fi

mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf 16
write_client() {
  cat >/etc/cachectl/cachectl.yaml <<YAML
version: 1
tiers:
  - name: lent
    type: nvmeof
    size: 1G
    remote: {nqn: "nqn.2014-08.org.cachectl:lend", address: 10.77.0.1, host_nqn: "nqn.2014-08.org.cachectl:client"}
    state: $1
models:
  dir: /srv/models
  cold_store: /srv/cold
$([[ $1 == present ]] && printf '  pinned:\n    model.gguf: lent\n')
YAML
}
write_client present
pair_wait exported 600 >/dev/null
apply_three client
expect_match "model placed in the remote tier" '^/run/cachectl/tiers/lent/' "$(readlink -f /srv/models/model.gguf)"
expect_eq "tier on a fabrics namespace" tcp "$(cat /sys/class/nvme-fabrics/ctl/nvme*/transport | sort -u)"
drop_caches
expect_eq "read over tcp: sha256 equal to the cold copy" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
write_client absent
apply_three client-absent
expect_eq "link back on cold storage" /srv/cold/model.gguf "$(readlink -f /srv/models/model.gguf)"
expect_eq "no fabrics controllers" "" "$(find /sys/class/nvme-fabrics/ctl -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' 2>/dev/null)"
pair_signal client-done
finish
