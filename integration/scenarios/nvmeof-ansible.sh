#!/bin/bash
# Ansible across two machines over SSH: one inventory and one playbook, run on
# the client guest (the only other machine on the pair's link), configure both
# guests through the collection's role, each over SSH (dropbear on both, key
# auth): the server gets the RAM export allowed to the client's NQN, the client
# an nvmeof tier naming that export and a model pinned to it. The first run
# changes both, the second is changed=0, --check changes nothing.
# pair: server client
# kernels: 6.1+
# requires: cachectl
# timeout: 2400
# manual: Ansible over SSH on two TCG guests takes many minutes; last measured run in integration/vm/README.md
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${CACHECTL_ANSIBLE_VENV:-/var/cache/cachectl-vm/ansible-venv}
CFS=/sys/kernel/config/nvmet
NQN=nqn.2014-08.org.cachectl:lend
CLIENT=nqn.2014-08.org.cachectl:client
mount_configfs
mkdir -p /etc/cachectl /root/.ssh
chmod 700 /root /root/.ssh

# SSH on both: dropbear (binaries only, no service on the host), root by key only.
start_sshd() {
  printf '%s\n' "$1" >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
  mkdir -p /etc/dropbear
  dropbear -R -s -p "$CACHECTL_VM_ADDR:22" || die "dropbear"
}

if [[ $(role) == server ]]; then
  start_sshd "$(pair_wait pubkey 600)"
  pair_signal ssh-ready
  pair_wait ansible-done 2300 >/dev/null
  expect_eq "the playbook exported the RAM" "$NQN" "$(ls "$CFS/subsystems")"
  expect_eq "allowed to the client only" "$CLIENT" "$(ls "$CFS/subsystems/$NQN/allowed_hosts")"
  expect_eq "allow_any_host off" 0 "$(cat "$CFS/subsystems/$NQN/attr_allow_any_host")"
  expect_match "the role wrote the server's state" 'allowed_hosts' "$(cat /etc/cachectl/cachectl.yaml)"
  finish
fi

# --- client: the controller ----------------------------------------------------------
[[ -x $venv/bin/ansible-playbook ]] || die "no ansible-core in $venv: run integration/ansible/install-ansible on the host first"
mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf 16
ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519 || die "ssh-keygen"
start_sshd "$(cat /root/.ssh/id_ed25519.pub)"
pair_signal pubkey "$(cat /root/.ssh/id_ed25519.pub)"
pair_wait ssh-ready 600 >/dev/null

work=/tmp/ansible
mkdir -p "$work/host_vars" /tmp/ansible-collections/ansible_collections/cachectl
ln -sfn "$repo/integration/ansible/collection" /tmp/ansible-collections/ansible_collections/cachectl/cachectl
cat >"$work/inventory" <<EOF
[lenders]
server ansible_host=10.77.0.1
[borrowers]
client ansible_host=10.77.0.2
[all:vars]
ansible_user=root
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_transfer_method=piped
cachectl_binary=$CACHECTL
cachectl_enable_apply_unit=false
EOF
cat >"$work/host_vars/server.yml" <<EOF
cachectl_state:
  version: 1
  nvmeof:
    exports:
      - name: lend
        size: 1G
        address: 10.77.0.1
        allowed_hosts: ["$CLIENT"]
EOF
cat >"$work/host_vars/client.yml" <<EOF
cachectl_state:
  version: 1
  tiers:
    - name: lent
      type: nvmeof
      size: 1G
      remote: {nqn: "$NQN", address: 10.77.0.1, transport: tcp, host_nqn: "$CLIENT"}
  models:
    dir: /srv/models
    cold_store: /srv/cold
    pinned:
      model.gguf: lent
EOF
# The lender first: the borrower's tier connects to its export.
cat >"$work/playbook.yml" <<'EOF'
- name: Lend RAM over NVMe-oF
  hosts: lenders
  gather_facts: false
  roles: [cachectl.cachectl.cachectl]
- name: Use it as a tier
  hosts: borrowers
  gather_facts: false
  roles: [cachectl.cachectl.cachectl]
EOF
export ANSIBLE_CONFIG=$repo/integration/ansible/ansible.cfg ANSIBLE_LOCAL_TEMP=/tmp/ansible-tmp ANSIBLE_NOCOLOR=1 \
  ANSIBLE_HOME=/tmp/ansible-home ANSIBLE_COLLECTIONS_PATH=/tmp/ansible-collections ANSIBLE_HOST_KEY_CHECKING=False \
  ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=600s"
play() { # LOG ARGS...
  local log=$1 t0=$SECONDS rc; shift
  (cd "$work" && "$venv/bin/ansible-playbook" -i inventory playbook.yml "$@") >"$log" 2>&1
  rc=$?
  log "$(basename "$log"): exit $rc, $((SECONDS - t0)) s"
  grep -A3 'PLAY RECAP' "$log" | sed "s|^|  $(basename "$log"): |" >&2
  [[ $rc -eq 0 ]] || tail -n 30 "$log" >&2
  return $rc
}
# changed HOST LOG: that host's changed= in the recap.
changed() { grep -E "^$1 +:" "$2" | grep -oE 'changed=[0-9]+' | cut -d= -f2; }
snapshot() { stat -c '%n %Y %Z' /etc/cachectl/cachectl.yaml /var/lib/cachectl/tiers.json; findmnt -n -o SOURCE /run/cachectl/tiers/lent; readlink /srv/models/model.gguf; }

play "$work/run1.log"
expect_eq "first run: exit 0" 0 "$?"
expect_ge "first run changed the server" "$(changed server "$work/run1.log")" 1
expect_ge "first run changed the client" "$(changed client "$work/run1.log")" 1
expect_eq "client: tier from the server's export" "$NQN" "$(cachectl tier list --json | jq -r '.tiers[] | select(.name == "lent") | .remote.nqn')"
expect_match "client: model pinned into the remote tier" '^/run/cachectl/tiers/lent/' "$(readlink -f /srv/models/model.gguf)"
drop_caches
expect_eq "client: read over tcp equals the cold copy" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"

snapshot >"$work/snap1"
play "$work/run2.log"
expect_eq "second run: exit 0" 0 "$?"
expect_eq "second run: server changed=0" 0 "$(changed server "$work/run2.log")"
expect_eq "second run: client changed=0" 0 "$(changed client "$work/run2.log")"
play "$work/check.log" --check
expect_eq "--check: exit 0" 0 "$?"
expect_eq "--check: server changed=0" 0 "$(changed server "$work/check.log")"
expect_eq "--check: client changed=0" 0 "$(changed client "$work/check.log")"
expect_eq "second run and --check touched nothing on the client" "$(cat "$work/snap1")" "$(snapshot)"
pair_signal ansible-done
finish
