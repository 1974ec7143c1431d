#!/bin/bash
# NVMe-oF between two machines over TCP: the server exports 1 GiB of RAM to the
# client's host NQN only (a third NQN is refused); the client connects, makes
# the tier, promotes a model and reads it back (sha256 of the cold copy) in one
# `tier create`, and demotes, unmounts and disconnects in one `tier destroy`;
# the server unexports and leaves no configfs entries. Prints the read rate
# over the link against the same model from a local tmpfs tier (RATE line).
# pair: server client
# kernels: 6.1+
# requires: cachectl
# timeout: 900
# manual: two TCG guests, several minutes; last measured run in integration/vm/README.md
. "$(dirname "$0")/lib.sh"
export TRANSPORT=tcp
# shellcheck source=nvmeof-pair.bash
. "$(dirname "$0")/nvmeof-pair.bash"
