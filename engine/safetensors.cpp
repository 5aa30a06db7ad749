#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "engine/atomic_file.h"

namespace advcl {

// The format stores little-endian bytes and we copy tensor memory verbatim.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace {

using nlohmann::json;

// The reference implementation refuses headers over 100 MB; a larger length
// is a corrupt file, and refusing it early avoids a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeCode {
  DType dtype;
  const char* code;
};
constexpr DTypeCode kCodes[] = {
    {DType::Float32, "F32"}, {DType::Float64, "F64"}, {DType::BFloat16, "BF16"},
    {DType::Int32, "I32"},   {DType::Int64, "I64"},   {DType::UInt8, "U8"},
};

bool lookup_code(const std::string& code, DType* out) {
  for (const DTypeCode& c : kCodes)
    if (code == c.code) {
      *out = c.dtype;
      return true;
    }
  return false;
}

std::string errno_text() { return std::strerror(errno); }

// Closes the FILE on every path out of a function.
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// --- loading ------------------------------------------------------------------

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// Parses the header JSON, refusing a repeated top-level key (nlohmann would
// silently keep the last one, and which tensor a name means must not be a guess).
json parse_header(const std::string& path, const std::string& text) {
  if (text.empty() || text[0] != '{')
    fail("load_safetensors: ", path, ": the header does not start with '{' (not a safetensors file?)");
  std::set<std::string> seen;
  std::string duplicate;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, callback);
  } catch (const json::exception& e) {
    fail("load_safetensors: ", path, ": the header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail("load_safetensors: ", path, ": the header names '", duplicate, "' twice");
  if (!header.is_object()) fail("load_safetensors: ", path, ": the header is not a JSON object");
  return header;
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v) {
  auto bad = [&](const auto&... what) { fail("load_safetensors: ", path, ": tensor '", name, "': ", what...); };
  if (name.empty()) bad("empty tensor name");
  if (!v.is_object()) bad("the entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) bad("the entry has no \"", key, "\"");
  Entry e;
  e.name = name;
  if (!v["dtype"].is_string()) bad("\"dtype\" is not a string");
  const std::string code = v["dtype"].get<std::string>();
  if (!lookup_code(code, &e.dtype)) bad("unsupported dtype \"", code, "\" (supported: F32, F64, BF16, I32, I64, U8)");

  const json& shape = v["shape"];
  if (!shape.is_array()) bad("\"shape\" is not an array");
  uint64_t numel = 1;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) bad("\"shape\" holds ", d.dump(), ", not a non-negative integer");
    uint64_t s = d.get<uint64_t>();
    if (s > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (s != 0 && numel > std::numeric_limits<uint64_t>::max() / s))
      bad("shape ", shape.dump(), " is too large");
    numel *= s;
    e.shape.push_back(static_cast<int64_t>(s));
  }
  uint64_t width = dtype_size(e.dtype);
  if (numel > std::numeric_limits<uint64_t>::max() / width) bad("shape ", shape.dump(), " is too large");

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    bad("\"data_offsets\" is ", off.dump(), ", not two non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  if (e.end - e.begin != numel * width)
    bad("data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes but ", code, " of shape ",
        shape_str(e.shape), " needs ", numel * width);
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
  if (!v.is_object()) fail("load_safetensors: ", path, ": \"__metadata__\" is not a JSON object");
  std::map<std::string, std::string> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string())
      fail("load_safetensors: ", path, ": metadata value of '", it.key(), "' is ", it.value().dump(),
           ", not a string");
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

// The data section must be covered exactly: sorted by offset, each tensor
// starts where the previous one ended and the last ends at the file's end.
void check_coverage(const std::string& path, std::vector<Entry> entries, uint64_t data_bytes) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t expect = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.end > data_bytes)
      fail("load_safetensors: ", path, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
           "] run past the data section, which holds ", data_bytes, " bytes (truncated file?)");
    if (e.begin < expect)
      fail("load_safetensors: ", path, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
           "] overlap tensor '", prev->name, "' [", prev->begin, ", ", prev->end, "]");
    if (e.begin > expect)
      fail("load_safetensors: ", path, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
           "] leave bytes [", expect, ", ", e.begin, ") of the data section unused");
    expect = e.end;
    prev = &e;
  }
  if (expect != data_bytes)
    fail("load_safetensors: ", path, ": the data section holds ", data_bytes, " bytes but the tensors cover only ",
         expect, " (trailing garbage?)");
}

// --- saving -------------------------------------------------------------------

}  // namespace

const char* safetensors_dtype_code(DType t) {
  for (const DTypeCode& c : kCodes)
    if (c.dtype == t) return c.code;
  fail("safetensors: dtype ", dtype_name(t), " has no safetensors code");
}

DType safetensors_dtype_from_code(const std::string& code) {
  DType t = DType::Float32;
  if (!lookup_code(code, &t))
    fail("safetensors: unsupported dtype \"", code, "\" (supported: F32, F64, BF16, I32, I64, U8)");
  return t;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::vector<Tensor> cpu;
  cpu.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) fail("save_safetensors: ", path, ": a tensor has an empty name");
    if (name == kMetadataKey) fail("save_safetensors: ", path, ": '", kMetadataKey, "' is reserved for metadata");
    if (header.contains(name)) fail("save_safetensors: ", path, ": tensor '", name, "' is given twice");
    if (!t.defined()) fail("save_safetensors: ", path, ": tensor '", name, "' is undefined");
    Tensor h = t.device().is_cpu() ? t : t.to(Device::cpu());
    json shape = json::array();
    for (int64_t s : h.shape()) shape.push_back(s);
    uint64_t end = offset + h.nbytes();
    header[name] = {{"dtype", safetensors_dtype_code(h.dtype())}, {"shape", shape}, {"data_offsets", {offset, end}}};
    offset = end;
    cpu.push_back(h);
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a name or value that is not valid UTF-8
    fail("save_safetensors: ", path, ": cannot encode the header: ", e.what());
  }
  // Padding to a multiple of 8 keeps the data section 8-byte aligned in the file.
  text.append((8 - text.size() % 8) % 8, ' ');

  // AtomicFile: a temporary unique to this writer, every write checked, then
  // fsync, close and rename; on any failure the previous file stays as it was.
  try {
    AtomicFile f(path);
    uint64_t n = text.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    f.write(len, 8);
    f.write(text);
    for (const Tensor& t : cpu) f.write(t.raw_data(), t.nbytes());
    f.commit();
  } catch (const Error& e) {
    fail("save_safetensors: ", e.what());
  }
}

SafetensorsFile load_safetensors(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) fail("load_safetensors: cannot open ", path, ": ", errno_text());
  struct stat st;
  if (::fstat(::fileno(f.get()), &st) != 0) fail("load_safetensors: ", path, ": cannot stat: ", errno_text());
  if (!S_ISREG(st.st_mode)) fail("load_safetensors: ", path, ": not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    fail("load_safetensors: ", path, ": the file has ", file_size, " bytes, fewer than the 8-byte header length");

  unsigned char len[8];
  if (std::fread(len, 1, 8, f.get()) != 8) fail("load_safetensors: ", path, ": cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > kMaxHeaderBytes)
    fail("load_safetensors: ", path, ": header length ", n, " is implausible (not a safetensors file?)");
  if (n > file_size - 8)
    fail("load_safetensors: ", path, ": header length ", n, " runs past the end of the file (", file_size,
         " bytes; truncated?)");
  std::string text(n, '\0');
  if (n && std::fread(text.data(), 1, n, f.get()) != n)
    fail("load_safetensors: ", path, ": cannot read the ", n, "-byte header");

  json header = parse_header(path, text);
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey)
      out.metadata = parse_metadata(path, it.value());
    else
      entries.push_back(parse_entry(path, it.key(), it.value()));
  }
  const uint64_t data_start = 8 + n;
  check_coverage(path, entries, file_size - data_start);

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    size_t bytes = static_cast<size_t>(e.end - e.begin);
    if (bytes) {
      if (::fseeko(f.get(), static_cast<off_t>(data_start + e.begin), SEEK_SET) != 0 ||
          std::fread(t.raw_data(), 1, bytes, f.get()) != bytes)
        fail("load_safetensors: ", path, ": tensor '", e.name, "': cannot read its ", bytes, " bytes");
    }
    out.tensors.emplace(e.name, t);
  }
  return out;
}

}  // namespace advcl
