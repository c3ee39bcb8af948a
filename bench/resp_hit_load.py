#!/usr/bin/python3
"""RedisVL's SemanticCache hit flow over the Redis protocol, with the server's CPU per check.

Stores ENTRIES as RedisVL stores them (an index over the prefix; pipelines of 16 HSETs of a
384-d unit vector, a 2 KiB response and times, each followed by EXPIRE; the vectors random
and distinct), waits until the server idles (the index's builds done), then runs each PHASE
over CHECKS queries, each a stored vector moved a little (noise 0.01), one round trip a
request as RedisVL sends them:

  search  FT.SEARCH idx "@prompt_vector:[VECTOR_RANGE 0.1 $vector]=>{$YIELD_DISTANCE_AS:
          vector_distance}" RETURN ... SORTBY vector_distance ASC DIALECT 2 LIMIT 0 1
  hit     the same, then EXPIRE of the key it returned (RedisVL's TTL refresh on a hit)
  expire  EXPIRE of the query's source key alone

and prints, per phase, the hits, the rate and the server's CPU (user + system, every
thread) per check. SKEW=s draws the queries' sources with Zipf-like popularity 1/rank^s
over a random order of the entries (0, the default: uniform). Used by resp_hit_cpu.sh; call
/usr/bin/python3.

  resp_hit_load.py PORT ADMIN_TOKEN SERVER_PID ENTRIES CHECKS PHASE[,PHASE...]
"""
import os
import sys
import time

import numpy as np

from redisvl_common import DIM, PIPELINE, TTL_S, org_with_index, server_cpu_s, wait_until_idle

NOISE = 0.01
DISTANCE_THRESHOLD = "0.1"


def main():
    port, admin_token, pid, entries, checks = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                               int(sys.argv[4]), int(sys.argv[5]))
    phases = sys.argv[6].split(",")
    r = org_with_index(port, admin_token)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((entries, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    response = os.urandom(1024).hex()  # 2 KiB, as the other Redis benchmarks
    for first in range(0, entries, PIPELINE):
        p = r.pipeline(transaction=False)
        for i in range(first, min(first + PIPELINE, entries)):
            key = "llmcache:%08x" % i
            now = "%.6f" % time.time()
            p.hset(key, mapping={"prompt": "prompt %d" % i, "response": response,
                                 "prompt_vector": vectors[i].tobytes(),
                                 "inserted_at": now, "updated_at": now})
            p.expire(key, TTL_S)
        p.execute()
    wait_until_idle(pid, 120)

    skew = float(os.environ.get("SKEW", "0"))
    if skew > 0:
        weights = 1.0 / np.arange(1, entries + 1) ** skew
        sources = rng.permutation(entries)[rng.choice(entries, checks, p=weights / weights.sum())]
    else:
        sources = rng.integers(0, entries, checks)
    queries = []
    for source in sources:
        q = vectors[source] + rng.standard_normal(DIM, dtype=np.float32) * NOISE
        queries.append((q / np.linalg.norm(q)).astype(np.float32).tobytes())

    def search(query):
        return r.execute_command(
            "FT.SEARCH", "llmcache",
            "@prompt_vector:[VECTOR_RANGE $distance_threshold $vector]"
            "=>{$YIELD_DISTANCE_AS: vector_distance}",
            "RETURN", "6", "prompt", "response", "inserted_at", "updated_at", "vector_distance",
            "id", "SORTBY", "vector_distance", "ASC", "DIALECT", "2", "LIMIT", "0", "1",
            "PARAMS", "4", "distance_threshold", DISTANCE_THRESHOLD, "vector", query)

    for phase in phases:
        before = server_cpu_s(pid)
        start = time.time()
        hits = 0
        for source, query in zip(sources, queries):
            if phase == "expire":
                hits += r.expire("llmcache:%08x" % source, TTL_S)
                continue
            found = search(query)
            if found[0] >= 1:
                hits += 1
                if phase == "hit":
                    r.expire(found[1], TTL_S)
        elapsed = time.time() - start
        used = server_cpu_s(pid) - before
        print("%s: %d checks, %d hits, %.0f /s, server CPU %.1f us a check" %
              (phase, checks, hits, checks / elapsed, used * 1e6 / checks), flush=True)


if __name__ == "__main__":
    main()
