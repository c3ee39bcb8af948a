#!/usr/bin/python3
"""The in-process peer of sealcache's lookups: Debian's FAISS (python3-faiss) HNSW over the
same vectors and queries as sealcache-bench (written by `sealcache-bench --export-workload
DIR`), with sealcache's graph parameters (M 16, efConstruction 100, efSearch 48, inner
product on normalised vectors).

Prints one JSON document: build rate, single-query search rate on one thread (what one
request costs, with no network, protocol, filter or payload), batched search rate on every
core, recall@1 against exact search on near-duplicate and fresh queries, hit rate and false
hits as sealcache-bench counts them (min_score from meta.json).

    /usr/bin/python3 bench/faiss_peer.py DIR [--threads N] [--orgs N]

A query's cost depends on the size of its org's graph, not on how many orgs there are, so
--orgs 1 (the first org's 100k vectors and queries) prices a lookup the same as all four at a
quarter of the build time (Debian's FAISS builds with scalar distances: ~250 vectors/s a
core at 100k x 384).
"""
import argparse
import json
import os
import sys
import time

import faiss
import numpy as np

HNSW_M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = 48
K = 5


def load(directory, org, dim):
    base = os.path.join(directory, "org%d" % org)
    vectors = np.fromfile(base + ".vectors", dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(base + ".queries", dtype="<f4").reshape(-1, dim)
    meta = np.loadtxt(base + ".queries.txt", dtype=np.int64, ndmin=2)
    return vectors, queries, meta[:, 0], meta[:, 1].astype(bool)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--orgs", type=int, default=0, help="first N orgs only (0: all)")
    args = parser.parse_args()
    with open(os.path.join(args.dir, "meta.json")) as f:
        meta = json.load(f)
    dim, min_score = meta["dim"], meta["min_score"]

    build_s = single_s = batch_s = 0.0
    built = searched = 0
    agree = {False: 0, True: 0}
    asked = {False: 0, True: 0}
    hits = expected = false_hits = 0
    orgs = min(args.orgs, meta["orgs"]) if args.orgs > 0 else meta["orgs"]
    for org in range(orgs):
        vectors, queries, sources, fresh = load(args.dir, org, dim)
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        faiss.omp_set_num_threads(args.threads)
        start = time.perf_counter()
        index.add(vectors)
        build_s += time.perf_counter() - start
        built += len(vectors)
        index.hnsw.efSearch = EF_SEARCH

        faiss.omp_set_num_threads(1)
        scores = np.empty((len(queries), K), dtype=np.float32)
        labels = np.empty((len(queries), K), dtype=np.int64)
        start = time.perf_counter()
        for i in range(len(queries)):
            s, l = index.search(queries[i : i + 1], K)
            scores[i], labels[i] = s[0], l[0]
        single_s += time.perf_counter() - start

        faiss.omp_set_num_threads(args.threads)
        start = time.perf_counter()
        index.search(queries, K)
        batch_s += time.perf_counter() - start
        searched += len(queries)

        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        _, truth = exact.search(queries, 1)
        for i in range(len(queries)):
            f = bool(fresh[i])
            asked[f] += 1
            agree[f] += int(labels[i, 0] == truth[i, 0])
            answered = scores[i, 0] >= min_score
            if not f:
                expected += 1
                hits += int(answered and labels[i, 0] == sources[i])
            if answered and (f or labels[i, 0] != sources[i]):
                false_hits += 1

    json.dump(
        {
            "peer": "faiss %s IndexHNSWFlat M=%d efConstruction=%d efSearch=%d"
            % (faiss.__version__, HNSW_M, EF_CONSTRUCTION, EF_SEARCH),
            "threads": args.threads,
            "orgs": orgs,
            "vectors_per_org": meta["entries"],
            "build_vectors_per_s": built / build_s,
            "search_single_query_per_s_one_thread": searched / single_s,
            "search_batched_per_s_all_threads": searched / batch_s,
            "recall_at_1_near_duplicate": agree[False] / max(asked[False], 1),
            "recall_at_1_fresh": agree[True] / max(asked[True], 1),
            "hit_rate": hits / max(expected, 1),
            "false_hit_rate": false_hits / max(searched, 1),
        },
        sys.stdout,
        indent=1,
    )
    print()


if __name__ == "__main__":
    main()
