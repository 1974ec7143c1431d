#!/bin/bash
# manual: needs nvmetcli's source in NVMETCLI_SRC; records fixtures, not a test
# Records nvmetcli-format configs from the guest kernel for the unit tests'
# fixtures (Tests/CachectlNVMeOFTests/Fixtures), and checks cachectl's save
# against nvmetcli's own (its nvmet/nvme.py, pure Python, from a checkout at
# NVMETCLI_SRC: nvmetcli is not packaged for bookworm nor on PyPI). Without a
# checkout the comparison is skipped. Run:
#   integration/vm/run --keep-logs DIR --env NVMETCLI_SRC=/path/to/nvmetcli nvmeof-capture-fixtures
# then copy DIR/nvmeof-capture-fixtures/fixtures/*.json into the fixtures folder.
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

out=/run/cachectl-vm/fixtures
mkdir -p "$out"
src=${NVMETCLI_SRC:-}
mount_configfs

nvmetcli_py() { # nvmetcli_py save|restore FILE
  /usr/bin/python3 -c "import sys; sys.path.insert(0, sys.argv[1]); from nvmet import nvme
r = nvme.Root()
if sys.argv[2] == 'save': r.save_to_file(sys.argv[3])
else:
    errors = r.restore_from_file(sys.argv[3]); print('\n'.join(errors))" "$src" "$@"
}

cachectl nvmet export lend --size 64M --addr 127.0.0.1 --port 4420 \
  --allow-host nqn.2014-08.org.cachectl:host-a --allow-host nqn.2014-08.org.cachectl:host-b >/dev/null || die "export lend"
cachectl nvmet export open --size 32M --addr ::1 --port 4421 --allow-any-host >/dev/null || die "export open"
cachectl nvmet save "$out/cachectl-saved-6.1.json" >/dev/null || die "cachectl save"
uname -r >"$out/kernel-release"
(cd /sys/kernel/config/nvmet && find . -printf '%M %p\n' | sort -k2) >"$out/configfs-tree-6.1.txt"

if [[ -n $src && -e $src/nvmet/nvme.py ]]; then
  nvmetcli_py save "$out/nvmetcli-saved-6.1.json" || die "nvmetcli save"
  expect_cmd "cachectl save is byte-identical to nvmetcli save" cmp "$out/cachectl-saved-6.1.json" "$out/nvmetcli-saved-6.1.json"
  # nvmetcli's restore of the same file into an empty target, then cachectl's save of that.
  for name in lend open; do cachectl nvmet unexport "$name" >/dev/null || die "unexport $name"; done
  # nvmetcli cannot make the tmpfs backing, and does not write buffered_io: give it the backing
  # it needs and see what it builds.
  cachectl nvmet restore "$out/cachectl-saved-6.1.json" --json >/tmp/r.json || die "cachectl restore: $(cat /tmp/r.json)"
  cachectl nvmet save /tmp/after-restore.json >/dev/null
  # Same content; lists may come back in another order (configfs lists newest first).
  normal() { jq -S 'walk(if type == "array" then sort else . end)' "$1"; }
  expect_eq "cachectl restore then save reproduces the config" "$(normal "$out/cachectl-saved-6.1.json")" "$(normal /tmp/after-restore.json)"
  # Clear with nvmetcli's own clear_existing, restore with nvmetcli, save with cachectl.
  /usr/bin/python3 -c "import sys; sys.path.insert(0, sys.argv[1]); from nvmet import nvme; nvme.Root().clear_existing()" "$src" || die "nvmetcli clear"
  if nvmetcli_py restore "$out/nvmetcli-saved-6.1.json" >"$out/nvmetcli-restore-output.txt" 2>&1; then
    cachectl nvmet save /tmp/after-nvmetcli-restore.json >/dev/null
    diff "$out/nvmetcli-saved-6.1.json" /tmp/after-nvmetcli-restore.json >"$out/nvmetcli-restore.diff"
    _pass "nvmetcli restore ran (diff of cachectl save after it: $(wc -l <"$out/nvmetcli-restore.diff") lines)"
  else
    _pass "nvmetcli restore failed (recorded): $(tail -1 "$out/nvmetcli-restore-output.txt")"
  fi
else
  log "NVMETCLI_SRC not set: skipping the comparison with nvmetcli"
fi
ls -la "$out" >&2
finish
