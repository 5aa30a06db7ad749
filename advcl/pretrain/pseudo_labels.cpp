#include "advcl/pretrain/pseudo_labels.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "engine/parse_number.h"
#include "datasets/pickle.h"
#include "engine/safetensors.h"

namespace advcl::method {

namespace {

std::string k_name(int64_t k) { return "pseudo_train_" + std::to_string(k); }

// More clusters than this is no granularity the method uses (the paper's
// largest is 500), and summary() counts every cluster.
constexpr int64_t kMaxClusters = 1'000'000;

// k of a name "pseudo_train_{k}" (the prefix already matched), or an error
// naming the file and the name.
int64_t cluster_count(const std::string& path, const std::string& name, const std::string& what) {
  int64_t k = 0;
  if (!parse_int64(name.substr(std::string("pseudo_train_").size()), &k))
    fail(path, ": ", what, " '", name, "' does not end in a cluster count (expected pseudo_train_{k}, e.g. pseudo_train_10)");
  if (k < 1 || k > kMaxClusters)
    fail(path, ": ", what, " '", name, "' names ", k, " clusters; a count must be in [1, ", kMaxClusters, "]");
  return k;
}

void check_unique(const std::string& path, const std::vector<int64_t>& ks) {
  std::set<int64_t> seen;
  for (int64_t k : ks)
    if (!seen.insert(k).second) fail(path, ": two label sets for k=", k, " (e.g. pseudo_train_", k, " and a zero-padded twin)");
}

// The reference's file: a pickled dict of 1-D int32 numpy arrays
// pseudo_train_{k} (and pseudo_test_{k}, unused).
PseudoLabels import_reference_pickle(const std::vector<uint8_t>& bytes, const std::string& path) {
  data::PyRef root = data::unpickle(bytes, path);
  if (root->kind != data::PyValue::Kind::Dict)
    fail(path, ": expected a pickled dict of pseudo-label arrays, found a ", root->kind_name());
  PseudoLabels out;
  out.source = path + " (reference pickle)";
  for (auto& [key, value] : root->dict) {
    if (key->kind != data::PyValue::Kind::Str && key->kind != data::PyValue::Kind::Bytes) continue;
    const std::string prefix = "pseudo_train_";
    if (key->s.rfind(prefix, 0) != 0) continue;
    int64_t k = cluster_count(path, key->s, "key");
    if (value->kind != data::PyValue::Kind::Array || value->shape.size() != 1)
      fail(path, ": '", key->s, "' is not a 1-D numpy array");
    std::vector<int32_t> labels(static_cast<size_t>(value->shape[0]));
    const std::string& dt = value->dtype;
    size_t width = dt.find('8') != std::string::npos ? 8 : 4;
    if (dt.find('i') == std::string::npos || value->bytes.size() != labels.size() * width || dt[0] == '>')
      fail(path, ": '", key->s, "' has dtype ", dt, "; expected little-endian int32 or int64");
    for (size_t i = 0; i < labels.size(); ++i) {
      int64_t v = 0;
      for (size_t b = 0; b < width; ++b) v |= static_cast<int64_t>(value->bytes[i * width + b]) << (8 * b);
      if (width == 4) v = static_cast<int32_t>(static_cast<uint32_t>(v));
      labels[i] = static_cast<int32_t>(v);
    }
    out.ks.push_back(k);
    out.train.push_back(std::move(labels));
  }
  if (out.ks.empty()) fail(path, ": no pseudo_train_{k} arrays found");
  check_unique(path, out.ks);
  // Keep the heads in increasing k, as the model's fc_{002..500}.
  std::vector<size_t> order(out.ks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return out.ks[a] < out.ks[b]; });
  PseudoLabels sorted{{}, {}, out.source};
  for (size_t i : order) {
    sorted.ks.push_back(out.ks[i]);
    sorted.train.push_back(std::move(out.train[i]));
  }
  return sorted;
}

}  // namespace

void PseudoLabels::check(int64_t n, const std::string& what) const {
  if (ks.empty()) fail(what, ": no pseudo-labels");
  for (size_t h = 0; h < ks.size(); ++h) {
    if (static_cast<int64_t>(train[h].size()) != n)
      fail(what, ": k=", ks[h], " has ", train[h].size(), " labels but the dataset has ", n,
           " images (are they for this dataset and --limit?)");
    for (int32_t l : train[h])
      if (l < -1 || l >= ks[h]) fail(what, ": k=", ks[h], " holds label ", l, ", outside [0, ", ks[h], ")");
  }
}

std::string PseudoLabels::summary() const {
  std::ostringstream os;
  for (size_t h = 0; h < ks.size(); ++h) {
    std::vector<int64_t> count(static_cast<size_t>(ks[h]), 0);
    for (int32_t l : train[h])
      if (l >= 0) ++count[l];
    auto [mn, mx] = std::minmax_element(count.begin(), count.end());
    os << (h ? "; " : "") << "k=" << ks[h] << ": sizes " << *mn << ".." << *mx;
  }
  return os.str();
}

Tensor PseudoLabels::lookup(size_t h, const Tensor& indices) const {
  if (h >= ks.size()) fail("pseudo-labels: head ", h, " of ", ks.size());
  // The loader's indices live on the host: read in place, no host round trip.
  if (!indices.device().is_cpu()) fail("pseudo-labels: the image indices must be on the host");
  check_dtype("pseudo-labels", indices, DType::Int64);
  const int64_t* idx = indices.data<int64_t>();
  std::vector<int64_t> out(static_cast<size_t>(indices.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (idx[i] < 0 || idx[i] >= size()) fail("pseudo-labels: image index ", idx[i], " outside [0, ", size(), ")");
    out[i] = train[h][static_cast<size_t>(idx[i])];
  }
  return Tensor::from_vector<int64_t>(out, {static_cast<int64_t>(out.size())});
}

void save_pseudo_labels(const std::string& path, const PseudoLabels& labels) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (size_t h = 0; h < labels.ks.size(); ++h)
    tensors.push_back({k_name(labels.ks[h]), Tensor::from_vector<int32_t>(labels.train[h], {labels.size()})});
  save_safetensors(path, tensors, {{"format", "advcl-pseudo-labels"}, {"source", labels.source}});
}

PseudoLabels load_pseudo_labels(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail(path, ": is a folder; give the pseudo-label file itself (`advcl pseudo-labels`' .safetensors or the "
         "reference's .pkl)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the pseudo-label file: ", fs::exists(path, ec) ? "permission denied?" : "no such file");
  // The first byte tells the formats apart; only a pickle is read whole here.
  if (in.peek() == 0x80) {  // the pickle PROTO opcode
    uint64_t size = fs::file_size(path, ec);
    if (!ec && size > data::kMaxPickleBytes)
      fail(path, ": a pickle of ", size, " bytes, more than the ", data::kMaxPickleBytes, " this reader accepts");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(path, ": read error in the pseudo-label file");
    return import_reference_pickle(bytes, path);
  }
  in.close();
  SafetensorsFile f = load_safetensors(path);
  PseudoLabels out;
  out.source = f.metadata.count("source") ? f.metadata.at("source") : path;
  std::vector<std::pair<int64_t, Tensor>> found;
  for (auto& [name, t] : f.tensors) {
    if (name.rfind("pseudo_train_", 0) != 0) continue;
    if (t.dim() != 1) fail(path, ": '", name, "' is not 1-D");
    found.push_back({cluster_count(path, name, "tensor"), t.to(DType::Int32)});
  }
  if (found.empty()) fail(path, ": no pseudo_train_{k} tensors found");
  std::vector<int64_t> ks;
  for (auto& f : found) ks.push_back(f.first);
  check_unique(path, ks);
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [k, t] : found) {
    out.ks.push_back(k);
    out.train.push_back(t.to_vector<int32_t>());
  }
  return out;
}

}  // namespace advcl::method
