#!/usr/bin/python3
"""FT.SEARCH against a model: random hashes and random filter queries, every answer of a
real sealcached checked against the same query evaluated in Python over the same hashes, as
server/RESP.md ("Search") defines it.

Run by ctest (label `resp`): search_model_test.py --sealcached PATH. The org's vector index
is FLAT, so a KNN search is exact and its answer is fully determined (up to the half
precision of stored vectors: distances within 2^-11, so near ties may swap places).

The model:
- an index's documents are the hashes whose names have one of its prefixes;
- `@t:{a|b}`: the hash's value of t, split at the field's separator and trimmed, holds a or
  b, compared without case; `@n:[lo hi]`: the value of n is a number within the bounds (`(`
  exclusive, `-inf`/`+inf`); a hash without the field matches neither; `-x` is every
  document x does not match; juxtaposition is AND, `|` is OR with lower precedence
  (DIALECT 2), parentheses group;
- a query without a vector clause answers the matching documents in key order, total the
  count of them all; `(filter)=>[KNN k @v $p AS d]` the k matching documents with a valid
  vector (DIM finite float32s, not all zero) nearest to p by cosine distance, nearest first.
"""
import math
import os
import random
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resp_front_test as front  # noqa: E402  (its Server: sealcached --dev in a temp dir)

DIM = 4
PREFIXES = ("doc:", "item:")
TAGS = ["red", "Green", "blue", "x y", "RED"]
CATEGORIES = ["a", "b", "c"]
HASHES = 600
QUERIES_PER_ROUND = 400
# Half-precision vectors (server/RESP.md): a reported distance within this of the exact one.
DISTANCE_TOLERANCE = 2e-3


def blob(v):
    return struct.pack("<%df" % len(v), *v)


def valid_vector(raw):
    if raw is None or len(raw) != 4 * DIM:
        return None
    v = struct.unpack("<%df" % DIM, raw)
    if not all(math.isfinite(x) for x in v) or not any(x != 0 for x in v):
        return None
    return v


def cosine_distance(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return 1.0 - dot / (na * nb)


# ---- random hashes ------------------------------------------------------------------------------

def random_hash(rng):
    fields = {}
    if rng.random() < 0.85:
        chosen = rng.sample(TAGS, rng.randint(1, 3))
        fields["tag"] = ",".join((" " * rng.randint(0, 1)) + t for t in chosen)
    if rng.random() < 0.8:
        fields["cat"] = ";".join(rng.sample(CATEGORIES, rng.randint(1, 2)))
    if rng.random() < 0.85:
        fields["num"] = rng.choice([str(rng.randint(-10, 20)), "%.2f" % rng.uniform(-10, 20),
                                    "0", "10", "2.5"])
    roll = rng.random()
    if roll < 0.8:
        fields["v"] = blob([rng.uniform(-1, 1) for _ in range(DIM)])
    elif roll < 0.85:
        fields["v"] = blob([0.0] * DIM)  # not a valid vector: stored, never a KNN candidate
    elif roll < 0.9:
        fields["v"] = b"short"
    fields["body"] = "text %d" % rng.randint(0, 1000)
    return fields


# ---- random filters: (query text, predicate over a hash's fields) --------------------------------

def tag_values(fields, name, separator):
    if name not in fields:
        return None
    return [t.strip().lower() for t in fields[name].split(separator)]


def number_of(fields):
    try:
        return float(fields["num"]) if "num" in fields else None
    except ValueError:
        return None


def escape_tag(t):
    return t.replace(" ", "\\ ")


def random_filter(rng, depth=0):
    roll = rng.random()
    if depth >= 3 or roll < 0.45:
        kind = rng.choice(["tag", "cat", "num"])
        if kind in ("tag", "cat"):
            pool = TAGS + ["nosuch"] if kind == "tag" else CATEGORIES + ["z"]
            wanted = rng.sample(pool, rng.randint(1, 2))
            separator = "," if kind == "tag" else ";"
            text = "@%s:{%s}" % (kind, " | ".join(escape_tag(w) for w in wanted))
            lowered = {w.lower() for w in wanted}

            def pred(f, kind=kind, separator=separator, lowered=lowered):
                values = tag_values(f, kind, separator)
                return values is not None and any(v in lowered for v in values)
            return text, pred
        bounds = ["-inf", "-5", "0", "2.5", "10", "+inf"]
        lo, hi = sorted(rng.sample(range(len(bounds)), 2))
        lo_ex, hi_ex = rng.random() < 0.3, rng.random() < 0.3
        lo_v, hi_v = float(bounds[lo]), float(bounds[hi])
        text = "@num:[%s%s %s%s]" % ("(" if lo_ex else "", bounds[lo], "(" if hi_ex else "",
                                     bounds[hi])

        def pred(f, lo_v=lo_v, hi_v=hi_v, lo_ex=lo_ex, hi_ex=hi_ex):
            n = number_of(f)
            return n is not None and (n > lo_v if lo_ex else n >= lo_v) and \
                (n < hi_v if hi_ex else n <= hi_v)
        return text, pred
    if roll < 0.6:
        text, inner = random_filter(rng, depth + 1)
        return "-" + (text if text.startswith("@") else "(%s)" % text), \
            (lambda f, inner=inner: not inner(f))
    parts = [random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    if roll < 0.8:
        return "(%s)" % " ".join(p[0] for p in parts), \
            (lambda f, parts=parts: all(p[1](f) for p in parts))
    return "(%s)" % " | ".join(p[0] for p in parts), \
        (lambda f, parts=parts: any(p[1](f) for p in parts))


class SearchModel(unittest.TestCase):
    # The org's vector index: FLAT answers exactly, so every answer is checked in full.
    KIND = "FLAT"
    EXACT = True
    HASHES = HASHES
    QUERIES = QUERIES_PER_ROUND

    @classmethod
    def setUpClass(cls):
        cls.server = front.Server()
        cls.addClassCleanup(cls.server.stop)  # also if what follows fails
        created = front.pairs(cls.server.admin().execute_command(
            "SEALCACHE.CREATEORG", "model", DIM, cls.KIND))
        cls.r = front.redis.Redis(port=cls.server.port, username="model",
                                  password=created["token"].decode())
        cls.r.execute_command(
            "FT.CREATE", "idx", "ON", "HASH", "PREFIX", len(PREFIXES), *PREFIXES, "SCHEMA",
            "tag", "TAG", "cat", "TAG", "SEPARATOR", ";", "num", "NUMERIC", "body", "TEXT",
            "v", "VECTOR", cls.KIND, "6", "TYPE", "FLOAT32", "DIM", DIM, "DISTANCE_METRIC",
            "COSINE")

    def write_hashes(self, rng, model):
        """Random hashes under both prefixes and outside them; some written twice, some
        losing a field, some deleted: `model` follows."""
        for i in range(self.HASHES):
            key = "%s%d" % (rng.choice(PREFIXES + ("other:",)), rng.randint(0, self.HASHES))
            roll = rng.random()
            if roll < 0.1 and key in model:
                self.r.delete(key)
                del model[key]
            elif roll < 0.15 and key in model and len(model[key]) > 1:
                field = rng.choice(sorted(model[key]))
                self.r.hdel(key, field)
                del model[key][field]
            else:
                fields = random_hash(rng)
                self.r.hset(key, mapping=fields)
                model.setdefault(key, {}).update(
                    {k: v if isinstance(v, bytes) else v for k, v in fields.items()})

    def check_round(self, rng, model):
        documents = {k: f for k, f in model.items() if k.startswith(PREFIXES)}
        text_of = {k: {n: (v.decode("latin-1") if isinstance(v, bytes) else v)
                       for n, v in f.items() if n != "v"} for k, f in documents.items()}
        failures = []
        for _ in range(self.QUERIES):
            text, pred = random_filter(rng)
            matching = sorted(k for k in documents if pred(text_of[k]))
            kind = rng.random()
            if kind < 0.35:
                if text.startswith("(") and text.endswith(")") and rng.random() < 0.5:
                    text = text[1:-1]  # (the top level needs no parentheses; precedence)
                reply = self.r.execute_command("FT.SEARCH", "idx", text, "NOCONTENT", "LIMIT",
                                               "0", "1000", "DIALECT", "2")
                got = [k.decode() for k in reply[1:]]
                if reply[0] != len(matching) or got != matching[:1000]:
                    failures.append("%s\n  sealcache: %d, only it: %s\n  model:     %d, only it: %s"
                                    % (text, reply[0], sorted(set(got) - set(matching))[:20],
                                       len(matching), sorted(set(matching) - set(got))[:20]))
                continue
            if kind < 0.5:
                # SORTBY a number (as numbers, hashes without it last) and a page of LIMIT:
                # the page's numbers must be the model's (ties may come in any order).
                descending = rng.random() < 0.5
                with_num = [k for k in matching if number_of(text_of[k]) is not None]
                ordered = sorted(with_num, key=lambda k: number_of(text_of[k]),
                                 reverse=descending)
                ordered += [k for k in matching if number_of(text_of[k]) is None]
                offset, count = rng.randint(0, 20), rng.randint(1, 15)
                reply = self.r.execute_command(
                    "FT.SEARCH", "idx", text, "RETURN", "1", "num", "SORTBY", "num",
                    "DESC" if descending else "ASC", "LIMIT", str(offset), str(count),
                    "DIALECT", "2")
                got = [reply[i].decode() for i in range(1, len(reply), 2)]
                expected = ordered[offset:offset + count]
                got_numbers = [number_of(text_of[k]) for k in got]
                expected_numbers = [number_of(text_of[k]) for k in expected]
                if reply[0] != len(matching) or got_numbers != expected_numbers or \
                        set(got) - set(matching):
                    failures.append("%s SORTBY num %s LIMIT %d %d\n  sealcache: %d %s\n"
                                    "  model:     %d %s" % (
                                        text, "DESC" if descending else "ASC", offset, count,
                                        reply[0], list(zip(got, got_numbers)), len(matching),
                                        list(zip(expected, expected_numbers))))
                continue
            query = [rng.uniform(-1, 1) for _ in range(DIM)]
            candidates = sorted(
                (cosine_distance(valid_vector(documents[key].get("v")), query), key)
                for key in matching if valid_vector(documents[key].get("v")) is not None)
            if kind < 0.7:
                # A VECTOR_RANGE clause in a conjunction with the filter, nearest first, a
                # page of at most `limit` (the search asks for no more).
                radius, limit = rng.uniform(0.05, 1.2), rng.randint(1, 40)
                clause = "@v:[VECTOR_RANGE %.4f $p]=>{$YIELD_DISTANCE_AS: d}" % radius
                reply = self.r.execute_command(
                    "FT.SEARCH", "idx", "%s %s" % (clause, text), "PARAMS", "2", "p",
                    blob(query), "RETURN", "1", "d", "SORTBY", "d", "ASC", "LIMIT", "0",
                    str(limit), "DIALECT", "2")
                got = [(reply[i].decode(), float(dict(zip(reply[i + 1][::2],
                                                          reply[i + 1][1::2]))[b"d"]))
                       for i in range(1, len(reply), 2)]
                problem = self.range_problem(got, candidates, float("%.4f" % radius), limit,
                                             self.EXACT)
                if problem:
                    failures.append("%s RANGE %.4f LIMIT %d\n  %s\n  sealcache: %s\n  model:"
                                    "     %s" % (text, radius, limit, problem, got[:12],
                                                 candidates[:min(limit, 12)]))
                continue
            k = rng.randint(1, 12)
            reply = self.r.execute_command(
                "FT.SEARCH", "idx", "(%s)=>[KNN %d @v $p AS d]" % (text, k), "PARAMS", "2",
                "p", blob(query), "RETURN", "1", "d", "LIMIT", "0", str(k), "DIALECT", "2")
            got = [(reply[i].decode(), float(dict(zip(reply[i + 1][::2],
                                                      reply[i + 1][1::2]))[b"d"]))
                   for i in range(1, len(reply), 2)]
            problem = self.knn_problem(got, candidates, k, self.EXACT)
            if problem:
                failures.append("%s KNN %d\n  %s\n  sealcache: %s\n  model:     %s" % (
                    text, k, problem, got[:12], candidates[:min(k, 12)]))
        return failures

    @staticmethod
    def answer_problem(got, candidates, nearer_than, exact_search):
        """What a KNN and a range answer must both be: every result [(key, distance)] one of
        `candidates` [(distance, key)] at its exact distance (within the tolerance), nearest
        first, and, from an exact search, no candidate nearer than `nearer_than` left out;
        None if so."""
        exact = {key: d for d, key in candidates}
        for key, d in got:
            if key not in exact:
                return "%s does not match the filter or has no vector" % key
            if abs(exact[key] - d) > DISTANCE_TOLERANCE:
                return "%s at distance %f, exactly %f" % (key, d, exact[key])
        if any(a[1] > b[1] + DISTANCE_TOLERANCE for a, b in zip(got, got[1:])):
            return "not nearest first"
        keys = {key for key, _ in got}
        for d, key in candidates if exact_search else []:
            if d < nearer_than - DISTANCE_TOLERANCE and key not in keys:
                return "%s (distance %f) is missing" % (key, d)
        return None

    @staticmethod
    def range_problem(got, candidates, radius, limit, exact_search):
        """Why `got` is not the nearest `limit` of `candidates` within `radius`, allowing
        distances within the tolerance of the radius either way; None if it is. Without
        `exact_search`, only that what it holds is right (an approximate search may miss
        some)."""
        surely_in = [key for d, key in candidates if d < radius - DISTANCE_TOLERANCE]
        maybe_in = [key for d, key in candidates if d <= radius + DISTANCE_TOLERANCE]
        if len(got) > limit or len(got) > len(maybe_in) or \
                (exact_search and len(got) < min(limit, len(surely_in))):
            return "%d results, expected %d to %d" % (
                len(got), min(limit, len(surely_in)), min(limit, len(maybe_in)))
        for key, d in got:
            if d > radius + DISTANCE_TOLERANCE:
                return "%s at distance %f, beyond the radius %f" % (key, d, radius)
        farthest = max((d for _, d in got), default=radius)
        return SearchModel.answer_problem(got, candidates, min(farthest, radius), exact_search)

    @staticmethod
    def knn_problem(got, candidates, k, exact_search):
        """Why `got` [(key, distance)] is not the k nearest of `candidates` [(distance,
        key)], allowing near ties to swap; None if it is. Without `exact_search`, that it
        holds k right answers (k when k match: the filter is applied inside the search),
        nearest first, not that they are the nearest."""
        if len(got) != min(k, len(candidates)):
            return "%d results, expected %d" % (len(got), min(k, len(candidates)))
        farthest = max((d for _, d in got), default=-1)
        return SearchModel.answer_problem(got, candidates, farthest, exact_search)

    def test_filters_and_knn_answer_as_the_model_does(self):
        rng = random.Random(7)
        model = {}
        failures = []
        for round_ in range(3):
            self.write_hashes(rng, model)
            if round_ == 2:
                # Expired hashes are found by no query (filters, KNN, SORTBY), though the
                # index's in-memory filter values and vectors may still hold them.
                for key in rng.sample(sorted(model), len(model) // 8):
                    self.r.pexpire(key, 200)
                    del model[key]
                time.sleep(1.0)
            failures += self.check_round(rng, model)
            if round_ == 1:
                # The filter values are kept in memory and read again from the encrypted
                # records at the first search after a start.
                self.server.restart()
                type(self).r = front.redis.Redis(
                    port=self.server.port, username="model",
                    password=self.r.connection_pool.connection_kwargs["password"])
        self.assertEqual(failures, [], "\n".join(failures[:10]))


class SearchModelHnsw(SearchModel):
    """The same over an HNSW org, with enough hashes that graphs are built (seals at 1,024
    vectors) beside the vectors not yet in one: what each answer holds is checked, and KNN's
    count, not that its results are the nearest."""
    KIND = "HNSW"
    EXACT = False
    HASHES = 1500
    QUERIES = 200


if __name__ == "__main__":
    front.main()
