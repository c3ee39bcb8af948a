"""What the RedisVL-shaped Redis-protocol benchmarks share (resp_store_load.py,
resp_hit_load.py): the server's CPU time, waiting until it idles, and an org with
RedisVL's SemanticCache index (FT.CREATE llmcache ON HASH PREFIX 1 llmcache: ...)."""
import os
import time

import redis

DIM = 384
PIPELINE = 16
TTL_S = 3600
PREFIX = "llmcache:"


def server_cpu_s(pid):
    """User + system CPU seconds of process `pid`, every thread."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid, max_s):
    """Until the server uses less than 2% of a core over a second, at most `max_s` seconds."""
    last = server_cpu_s(pid)
    for _ in range(max_s):
        time.sleep(1)
        now = server_cpu_s(pid)
        if now - last < 0.02:
            return
        last = now


def org_with_index(port, admin_token):
    """A client of a new org `store` (dimension DIM) holding RedisVL's cache index."""
    admin = redis.Redis(port=port, username="admin", password=admin_token)
    reply = admin.execute_command("SEALCACHE.CREATEORG", "store", DIM)
    token = dict(zip(reply[::2], reply[1::2]))[b"token"].decode()
    r = redis.Redis(port=port, username="store", password=token)
    r.execute_command("FT.CREATE", "llmcache", "ON", "HASH", "PREFIX", "1", PREFIX,
                      "SCHEMA", "prompt", "TEXT", "response", "TEXT", "prompt_vector",
                      "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", str(DIM),
                      "DISTANCE_METRIC", "COSINE")
    return r
