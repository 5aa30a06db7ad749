#!/usr/bin/env python3
"""Times advcl's k-means against scikit-learn and faiss-cpu on the same
clustered float32 features, from the same k-means++ initial centroids (made by
advcl), for the same fixed number of Lloyd iterations and thread count, and
prints the ratios (ours / theirs; below 1 = we are faster).

    python3 bench/kmeans_bench.py [--build build/cpu] [--threads 2] [--n 50000] [--d 512] [--k 500] [--iterations 10]
                                  [--binary PATH]

Also times advcl's k-means++ on the same data, and with --sklearn-init
scikit-learn's `kmeans_plusplus` (greedy k-means++, its default: 2 + ln k
candidates per centre; minutes at the default size). --binary times another
advcl_kmeans_bench (e.g. an older build).

Needs numpy, safetensors, scikit-learn and faiss-cpu (pip install scikit-learn
faiss-cpu); never needed by the build or tests.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--noise", type=float, default=1.0, help="per-dimension noise around unit-variance centres")
    ap.add_argument("--sklearn-init", action="store_true", help="also time scikit-learn's kmeans_plusplus")
    ap.add_argument("--binary", default="", help="the advcl_kmeans_bench to time (default: BUILD/bin/...)")
    a = ap.parse_args()
    # Thread counts must be set before numpy / sklearn / faiss load their thread pools.
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(a.threads)
    import faiss
    import numpy as np
    import sklearn
    from safetensors.numpy import load_file, save_file
    from sklearn.cluster import KMeans, kmeans_plusplus
    from threadpoolctl import threadpool_limits

    binary = a.binary or os.path.join(a.build, "bin", "advcl_kmeans_bench")
    if not os.path.exists(binary):
        sys.exit(f"kmeans_bench: {binary} not found; run `make bench-kmeans` (it builds it)")
    # Random but clustered: k true centres, overlapping enough that Lloyd keeps moving for many iterations.
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((a.k, a.d)).astype(np.float32)
    x = centres[rng.integers(0, a.k, a.n)] + a.noise * rng.standard_normal((a.n, a.d)).astype(np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        xf, initf = os.path.join(tmp, "x.safetensors"), os.path.join(tmp, "init.safetensors")
        save_file({"x": x}, xf)
        res = subprocess.run([binary, "--features", xf, "--k", str(a.k), "--iterations", str(a.iterations),
                              "--threads", str(a.threads), "--init-out", initf],
                             capture_output=True, text=True, check=True)
        ours = {d["name"]: d for d in map(json.loads, res.stdout.splitlines())}
        init = np.ascontiguousarray(load_file(initf)["init"].astype(np.float32))

    with threadpool_limits(limits=a.threads):
        skpp_ms = None
        if a.sklearn_init:
            t0 = time.perf_counter()
            kmeans_plusplus(x, a.k, random_state=0)
            skpp_ms = (time.perf_counter() - t0) * 1000
        km = KMeans(n_clusters=a.k, init=init, n_init=1, max_iter=a.iterations, tol=0, algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(x)
        sk_ms = (time.perf_counter() - t0) * 1000
    faiss.omp_set_num_threads(a.threads)
    fk = faiss.Kmeans(a.d, a.k, niter=a.iterations, seed=0, max_points_per_centroid=a.n, verbose=False)
    t0 = time.perf_counter()
    fk.train(x, init_centroids=init)
    fa_ms = (time.perf_counter() - t0) * 1000
    _, fa_labels = fk.index.search(x, 1)
    fa_inertia = float(((x - fk.centroids[fa_labels[:, 0]]) ** 2).sum(dtype=np.float64))

    lloyd = ours["lloyd"]
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, advcl --threads {a.threads}, threadpoolctl limit "
          f"{a.threads}, faiss.omp_set_num_threads({a.threads}); "
          f"scikit-learn {sklearn.__version__}, faiss {faiss.__version__}, numpy {np.__version__}")
    print(f"# {a.n} x {a.d} float32, k = {a.k}, {a.iterations} Lloyd iterations from advcl's k-means++; {binary}")
    pp = ours["kmeans++"]["ms"]
    if skpp_ms is None:
        print(f"# k-means++: advcl {pp / 1000:.2f} s (--sklearn-init also times scikit-learn's)")
    else:
        print(f"# k-means++: advcl {pp / 1000:.2f} s, scikit-learn kmeans_plusplus {skpp_ms / 1000:.2f} s "
              f"(advcl/scikit-learn {pp / skpp_ms:.2f})")
    print(f"{'library':14s} {'seconds':>9s} {'iters':>6s} {'inertia':>14s} {'advcl/this':>11s}")
    print(f"{'advcl':14s} {lloyd['ms'] / 1000:9.2f} {lloyd['iterations']:6d} {lloyd['inertia']:14.6g} {1:11.2f}")
    print(f"{'scikit-learn':14s} {sk_ms / 1000:9.2f} {km.n_iter_:6d} {km.inertia_:14.6g} {lloyd['ms'] / sk_ms:11.2f}")
    print(f"{'faiss-cpu':14s} {fa_ms / 1000:9.2f} {a.iterations:6d} {fa_inertia:14.6g} {lloyd['ms'] / fa_ms:11.2f}")


if __name__ == "__main__":
    main()
