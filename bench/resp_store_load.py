#!/usr/bin/python3
"""Stores entries over the Redis protocol the way RedisVL's SemanticCache does (an index
over the prefix, then for each entry a pipelined HSET of prompt, response, vector and
times, and an EXPIRE of its key; 16 entries a pipeline) and prints the server's CPU time
(user + system, every thread, until it idles after the load: the index's builds included)
per entry. Used by resp_store_cpu.sh; call /usr/bin/python3.

  resp_store_load.py PORT ADMIN_TOKEN SERVER_PID ENTRIES MODE

MODE `store` sends HSET + EXPIRE, `multi` the same in a MULTI ... EXEC (redis-py's default
pipeline, as LangChain's RedisCache stores), `hset` the HSETs alone (the floor a store can
reach).
"""
import os
import struct
import sys
import time

from redisvl_common import DIM, PIPELINE, TTL_S, org_with_index, server_cpu_s, wait_until_idle


def main():
    port, admin_token, pid, entries, mode = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                             int(sys.argv[4]), sys.argv[5])
    r = org_with_index(port, admin_token)
    response = os.urandom(1024).hex()  # 2 KiB, as the other Redis benchmarks
    vectors = [struct.pack("%df" % DIM, *[((i * 7919 + j * 104729) % 1000) / 1000.0 - 0.5
                                          for j in range(DIM)]) for i in range(64)]
    before = server_cpu_s(pid)
    start = time.time()
    for first in range(0, entries, PIPELINE):
        p = r.pipeline(transaction=(mode == "multi"))
        for i in range(first, min(first + PIPELINE, entries)):
            key = "llmcache:%08x" % i
            now = "%.6f" % time.time()
            p.hset(key, mapping={"prompt": "prompt %d" % i, "response": response,
                                 "prompt_vector": vectors[i % len(vectors)],
                                 "inserted_at": now, "updated_at": now})
            if mode in ("store", "multi"):
                p.expire(key, TTL_S)
        p.execute()
    elapsed = time.time() - start
    # The writes' flushes and the index's builds of their vectors count too: wait until the
    # server idles, at most a minute.
    wait_until_idle(pid, 60)
    used = server_cpu_s(pid) - before
    print("%s: %d entries, %.0f /s, server CPU %.1f us an entry" %
          (mode, entries, entries / elapsed, used * 1e6 / entries))


if __name__ == "__main__":
    main()
