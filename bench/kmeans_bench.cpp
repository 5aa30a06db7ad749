// Timings of advcl's k-means on a given feature matrix: k-means++ and a fixed
// number of Lloyd iterations. Prints one JSON object per line. Run through
// bench/kmeans_bench.py, which makes the features, and times scikit-learn and
// faiss from the initial centroids written here (--init-out).
//   advcl_kmeans_bench --features F.safetensors --k K --iterations I [--threads N] [--seed S] [--init-out F]
//                      [--init-in F]
// --init-in starts Lloyd from the centroids `init` of F instead of running k-means++.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "advcl/pretrain/kmeans.h"
#include "engine/parallel.h"
#include "engine/safetensors.h"

using namespace advcl;

namespace {

double ms_since(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string features, init_out, init_in;
  int64_t k = 500;
  int iterations = 10, threads = 1;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "advcl_kmeans_bench: %s needs a value\n", a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--features") features = v;
    else if (a == "--init-out") init_out = v;
    else if (a == "--init-in") init_in = v;
    else if (a == "--k") k = std::atoll(v);
    else if (a == "--iterations") iterations = std::atoi(v);
    else if (a == "--threads") threads = std::atoi(v);
    else if (a == "--seed") seed = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: advcl_kmeans_bench --features F --k K --iterations I [--threads N] [--seed S] "
                   "[--init-out F] [--init-in F]\n");
      return 2;
    }
  }
  try {
    if (features.empty()) fail("--features is required (a safetensors file with `x` [N, D])");
    set_num_threads(threads);
    Tensor x = load_safetensors(features).tensors.at("x");
    auto t0 = std::chrono::steady_clock::now();
    Tensor init;
    if (!init_in.empty()) {
      init = load_safetensors(init_in).tensors.at("init");
    } else {
      init = method::kmeans_plus_plus_init(x, k, RngKey{seed, static_cast<uint32_t>(RngPurpose::KMeans), 0, 0});
      std::printf("{\"name\": \"kmeans++\", \"ms\": %.3f}\n", ms_since(t0));
      std::fflush(stdout);
    }
    if (!init_out.empty()) save_safetensors(init_out, {{"init", init}});
    method::KMeansOptions opt;
    opt.max_iterations = iterations;
    opt.tolerance = -1;  // exactly `iterations` Lloyd iterations, as the other libraries are run
    t0 = std::chrono::steady_clock::now();
    method::KMeansResult r = method::lloyd(x, init, opt);
    std::printf("{\"name\": \"lloyd\", \"ms\": %.3f, \"iterations\": %d, \"inertia\": %.10g}\n", ms_since(t0),
                r.iterations, r.inertia);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "advcl_kmeans_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
