#!/usr/bin/env python3
"""Streams one file with Run:ai's Model Streamer (PyPI runai-model-streamer) into a
CPU buffer and prints "SECONDS CPU": the wall and CPU seconds (all threads) of its
streaming, nothing else.

Uses the package's libstreamer layer (ctypes over its C++ library), not FileStreamer
or SafetensorsStreamer: those import torch, which the streaming does not need. The
buffer is allocated and touched before the clock starts, so only the reads are timed.
Concurrency and chunk size are the library's (RUNAI_STREAMER_CONCURRENCY,
RUNAI_STREAMER_CHUNK_BYTESIZE; the benchmark sets 16 and 2 MiB, its defaults).
The library reads with O_DIRECT where the filesystem allows it, so the file is
not left in the page cache: a speed reference, not a way to warm it.

Usage: runai_stream.py FILE
"""
import ctypes
import importlib.util
import mmap
import os
import resource
import sys
import time
import types

# The package's __init__ imports torch (for SafetensorsStreamer); its libstreamer
# layer does not. Register the package without running __init__, then import that.
_spec = importlib.util.find_spec("runai_model_streamer")
if _spec is None:
    sys.exit("runai_stream.py: runai-model-streamer is not installed")
_package = types.ModuleType("runai_model_streamer")
_package.__path__ = list(_spec.submodule_search_locations)
sys.modules["runai_model_streamer"] = _package

from runai_model_streamer.libstreamer.libstreamer import (
    runai_end, runai_probe_direct_block_size, runai_request, runai_response, runai_response_str, runai_start,
)


def main() -> int:
    path = sys.argv[1]
    size = os.stat(path).st_size
    buffer = mmap.mmap(-1, size)  # page-aligned, anonymous
    for offset in range(0, size, mmap.PAGESIZE):  # touch every page before timing
        buffer[offset] = 0
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    streamer = runai_start()
    try:
        runai_probe_direct_block_size(streamer, [path])  # lets it use O_DIRECT (cached per mount)
        cpu_start = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        runai_request(streamer, [path], [1], [0], [size], [address])
        while True:
            response = runai_response(streamer)
            if response is None:
                break
            code, _submission, _file, _range, done = response
            if code != 0:
                print(f"runai streamer: {runai_response_str(code)}", file=sys.stderr)
                return 1
            if done:
                break
        elapsed = time.monotonic() - start
        cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        runai_end(streamer)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    print(f"{elapsed:.4f} {cpu:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
