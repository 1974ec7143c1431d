#!/usr/bin/env python3
"""measure.py [--self-timed] CMD...: runs CMD (stdout discarded) and prints
"WALL CPU MINFLT": wall seconds (monotonic clock around fork/exec/wait), user+system
CPU seconds and minor page faults of CMD and its children (their rusage).
With --self-timed, CMD prints "SECONDS CPU" for the part that counts (runai_stream.py:
its streaming only), and those are printed instead, with -1 for faults.
Exit status: CMD's."""
import os
import subprocess
import sys

import time

args = sys.argv[1:]
self_timed = args[:1] == ["--self-timed"]
if self_timed:
    args = args[1:]
if self_timed:
    process = subprocess.run(args, stdout=subprocess.PIPE)
    if process.returncode != 0:
        sys.exit(process.returncode)
    seconds, cpu = process.stdout.decode().split()[-2:]
    print(f"{float(seconds):.4f} {float(cpu):.3f} -1")
    sys.exit(0)
# posix_spawn (clone with CLONE_VM|CLONE_VFORK): the child touches none of this
# process's pages before exec, so its fault count is the command's own.
start = time.monotonic()
pid = os.posix_spawnp(args[0], args, os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic() - start
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.exit(code if code > 0 else 1)
print(f"{wall:.4f} {usage.ru_utime + usage.ru_stime:.3f} {usage.ru_minflt}")
