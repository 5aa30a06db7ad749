// libFuzzer harness: the unpickler (datasets/pickle.h), then the CIFAR
// python-version decoder on the same bytes (dict lookups, array shapes).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "datasets/cifar.h"
#include "datasets/pickle.h"

namespace {

// Touches every node, so a malformed tree would show up under ASan.
size_t walk(const advcl::data::PyValue& v, int depth) {
  size_t n = 1 + v.s.size() + v.bytes.size() + v.shape.size();
  if (depth > 64) return n;
  for (const auto& it : v.items)
    if (it) n += walk(*it, depth + 1);
  for (const auto& [k, val] : v.dict) {
    if (k) n += walk(*k, depth + 1);
    if (val) n += walk(*val, depth + 1);
  }
  return n + (v.kind_name() != nullptr);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(data, data + size);
  try {
    advcl::data::PyRef root = advcl::data::unpickle(file, "fuzz.pkl");
    if (root) walk(*root, 0);
  } catch (const std::exception&) {
  }
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  for (int classes : {10, 100}) {
    try {
      advcl::data::decode_cifar_pickle(file, classes, "fuzz.pkl", images, labels);
    } catch (const std::exception&) {
    }
  }
  return 0;
}
