// engine/safetensors: round trips, files written by Python's `safetensors`,
// atomic replacement, and a clear error for every kind of broken file.
#include "engine/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "tests/golden_util.h"

using namespace advcl;

namespace {

// A file name under the test temp dir, unique to this process, removed (with
// its ".tmp" sibling) when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& stem)
      : path_(::testing::TempDir() + "advcl_st_" + std::to_string(::getpid()) + "_" + stem + ".safetensors") {}
  ~TempFile() {
    std::remove(path_.c_str());
    std::remove((path_ + ".tmp").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool exists(const std::string& p) { return std::ifstream(p).good(); }

std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

void write_bytes(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made file: length prefix, `header` verbatim (unpadded), then `data`.
std::string raw_file(const std::string& header, const std::string& data, uint64_t length_override = 0) {
  uint64_t n = length_override ? length_override : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Runs `fn`, expecting an advcl::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

BFloat16 bf(float f) { return BFloat16(f); }

// Exactly the tensors of tests/golden/safetensors_samples.py (keep in step).
std::vector<std::pair<std::string, Tensor>> samples() {
  const int64_t i64min = std::numeric_limits<int64_t>::min(), i64max = std::numeric_limits<int64_t>::max();
  const int32_t i32min = std::numeric_limits<int32_t>::min(), i32max = std::numeric_limits<int32_t>::max();
  return {
      {"f32", Tensor::from_vector<float>({-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}, {2, 3})},
      {"f64", Tensor::from_vector<double>({0.1, -2.5, 1e-300, 1e300}, {4})},
      {"bf16", Tensor::from_vector<BFloat16>({bf(1.0f), bf(-2.0f), bf(0.5f), bf(3.140625f)}, {2, 2})},
      {"i32", Tensor::from_vector<int32_t>({i32min, i32max, 0}, {3})},
      {"i64", Tensor::from_vector<int64_t>({i64min, i64max, 42}, {3})},
      {"u8", Tensor::from_vector<uint8_t>({0, 255, 7}, {3, 1})},
      {"scalar", Tensor::scalar(2.5)},
      {"empty", Tensor::zeros({0, 3})},
      {"nested.name/with:punct", Tensor::from_vector<int64_t>({1, 2}, {2})},
  };
}
const std::map<std::string, std::string> kSampleMetadata = {{"format", "pt"},
                                                            {"note", "written by Python \u2014 safetensors"}};

void expect_samples(const SafetensorsFile& f, const std::string& what) {
  auto want = samples();
  EXPECT_EQ(f.tensors.size(), want.size()) << what;
  for (const auto& [name, t] : want) {
    auto it = f.tensors.find(name);
    ASSERT_NE(it, f.tensors.end()) << what << ": no tensor '" << name << "'";
    EXPECT_TRUE(same_bytes(it->second, t)) << what << ": tensor '" << name << "' differs: got "
                                           << dtype_name(it->second.dtype()) << shape_str(it->second.shape());
    EXPECT_TRUE(it->second.device().is_cpu());
    EXPECT_FALSE(it->second.requires_grad());
  }
  EXPECT_EQ(f.metadata, kSampleMetadata) << what;
}

// A valid two-tensor file's header, with the pieces the corruption tests change.
std::string header_of(const std::string& a_entry, const std::string& b_entry, const std::string& extra = "") {
  return "{\"a\":" + a_entry + ",\"b\":" + b_entry + extra + "}";
}
const std::string kA = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::string kB = R"({"dtype":"I64","shape":[1],"data_offsets":[8,16]})";
const std::string kData(16, '\x01');

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeShapeAndMetadata) {
  TempFile file("roundtrip");
  auto tensors = samples();
  // A view that starts inside its storage: the writer must start at the view, not the storage.
  Tensor big = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {3, 2});
  tensors.emplace_back("view_rows_1_2", big.narrow0(1, 2));
  std::map<std::string, std::string> meta = {{"epoch", "12"}, {"empty", ""}, {"quote\"and\\slash", "line\nbreak"}};
  save_safetensors(file.path(), tensors, meta);
  EXPECT_FALSE(exists(file.path() + ".tmp")) << "the temporary file was left behind";
  // The header is padded so that the data starts at a multiple of 8.
  std::string bytes = read_bytes(file.path());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);

  SafetensorsFile f = load_safetensors(file.path());
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_bytes(f.tensors.at(name), t)) << name;
  EXPECT_EQ(f.tensors.at("view_rows_1_2").to_vector<double>(), (std::vector<double>{3, 4, 5, 6}));
}

TEST(Safetensors, FromAMapWithoutMetadata) {
  TempFile file("map");
  std::map<std::string, Tensor> m = {{"w", Tensor::full({2, 2}, 0.25, DType::Float64)}};
  save_safetensors(file.path(), {m.begin(), m.end()});
  SafetensorsFile f = load_safetensors(file.path());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_TRUE(same_bytes(f.tensors.at("w"), m.at("w")));
  // Python does not write an empty "__metadata__"; neither do we.
  EXPECT_EQ(read_bytes(file.path()).find("__metadata__"), std::string::npos);
}

TEST(Safetensors, DtypeCodes) {
  for (DType t : {DType::Float32, DType::Float64, DType::BFloat16, DType::Int32, DType::Int64, DType::UInt8})
    EXPECT_EQ(safetensors_dtype_from_code(safetensors_dtype_code(t)), t);
  EXPECT_STREQ(safetensors_dtype_code(DType::BFloat16), "BF16");
  expect_error([] { safetensors_dtype_from_code("F16"); }, {"F16", "supported"});
}

// The same tensors as tests/golden/python_samples.safetensors, written by us.
// With ADVCL_SAFETENSORS_EXPORT=path the file is also written there, for
// `python3 tests/golden/safetensors_samples.py --check path`.
TEST(Safetensors, WritesSamplesForPython) {
  TempFile file("samples");
  save_safetensors(file.path(), samples(), kSampleMetadata);
  expect_samples(load_safetensors(file.path()), file.path());
  if (const char* out = std::getenv("ADVCL_SAFETENSORS_EXPORT")) save_safetensors(out, samples(), kSampleMetadata);
}

TEST(Safetensors, LoadsFileWrittenByPython) {
  std::string path = testing_util::source_path("tests/golden/python_samples.safetensors");
  ASSERT_TRUE(testing_util::readable(path)) << testing_util::missing_file_message(path);
  // Python orders the data by alignment, not by name, and puts a zero-byte
  // tensor at the same offset as the next one: both must load.
  expect_samples(load_safetensors(path), path);
}

TEST(Safetensors, ReplacesAnExistingFileWhole) {
  TempFile file("replace");
  save_safetensors(file.path(), {{"x", Tensor::full({1000}, 1.0)}});
  save_safetensors(file.path(), {{"y", Tensor::full({3}, 2.0)}}, {{"v", "2"}});
  SafetensorsFile f = load_safetensors(file.path());
  EXPECT_EQ(f.tensors.count("x"), 0u);
  EXPECT_EQ(f.tensors.at("y").to_vector<float>(), (std::vector<float>{2, 2, 2}));
  EXPECT_FALSE(exists(file.path() + ".tmp"));
}

TEST(Safetensors, SaveErrorsNameTheFileAndWriteNothing) {
  TempFile file("bad_save");
  const std::string& p = file.path();
  Tensor t = Tensor::zeros({2});
  expect_error([&] { save_safetensors(p, {{"a", t}, {"a", t}}); }, {p, "'a'", "twice"});
  expect_error([&] { save_safetensors(p, {{"__metadata__", t}}); }, {p, "reserved"});
  expect_error([&] { save_safetensors(p, {{"", t}}); }, {p, "empty name"});
  expect_error([&] { save_safetensors(p, {{"u", Tensor()}}); }, {p, "'u'", "undefined"});
  expect_error([&] { save_safetensors(p, {{"bad\xff", t}}); }, {p, "cannot encode"});
  EXPECT_FALSE(exists(p));
  EXPECT_FALSE(exists(p + ".tmp"));
  std::string nodir = ::testing::TempDir() + "advcl_no_such_dir_" + std::to_string(::getpid()) + "/x.safetensors";
  expect_error([&] { save_safetensors(nodir, {{"a", t}}); }, {nodir, "cannot create"});
}

TEST(Safetensors, SavesGpuTensorsFromTheCpu) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  TempFile file("gpu");
  Tensor h = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor d;
  try {
    d = h.to(Device::cuda());
  } catch (const Error& e) {
    GTEST_SKIP() << "no usable GPU: " << e.what();
  }
  save_safetensors(file.path(), {{"d", d}});
  SafetensorsFile f = load_safetensors(file.path());
  EXPECT_TRUE(f.tensors.at("d").device().is_cpu());
  EXPECT_TRUE(same_bytes(f.tensors.at("d"), h));
}

TEST(Safetensors, AValidHandMadeFileLoads) {
  // The baseline for the corruption tests below: the same bytes, unbroken.
  TempFile file("handmade");
  write_bytes(file.path(), raw_file(header_of(kA, kB), kData));
  SafetensorsFile f = load_safetensors(file.path());
  EXPECT_EQ(f.tensors.at("a").shape(), (Shape{2}));
  EXPECT_EQ(f.tensors.at("b").to_vector<int64_t>()[0], 0x0101010101010101LL);
}

TEST(Safetensors, BrokenFilesGiveErrorsNamingFileAndTensor) {
  TempFile file("broken");
  const std::string& p = file.path();
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> expect;  // besides the path
  };
  const std::string good = raw_file(header_of(kA, kB), kData);
  std::vector<Case> cases = {
      {"empty file", "", {"fewer than the 8-byte"}},
      {"short file", "abc", {"fewer than the 8-byte"}},
      {"header past the end", good.substr(0, 20), {"runs past the end"}},
      {"absurd header length", raw_file("{}", "", 1ULL << 60), {"implausible"}},
      {"not JSON", raw_file("{\"a\":", ""), {"not valid JSON"}},
      {"not an object", raw_file("[1,2]", ""), {"does not start with '{'"}},
      {"data truncated", good.substr(0, good.size() - 3), {"'b'", "run past the data section", "truncated"}},
      {"trailing bytes", good + "xyz", {"cover only", "trailing"}},
      {"unknown dtype", raw_file(header_of(R"({"dtype":"F16","shape":[2],"data_offsets":[0,4]})", kB), kData),
       {"'a'", "F16"}},
      {"size mismatch", raw_file(header_of(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", kB), kData),
       {"'a'", "needs 12"}},
      {"overlap", raw_file(header_of(kA, R"({"dtype":"I64","shape":[1],"data_offsets":[4,12]})"), kData),
       {"'b'", "overlap", "'a'"}},
      {"hole", raw_file(header_of(kA, R"({"dtype":"U8","shape":[4],"data_offsets":[12,16]})"), kData),
       {"'b'", "unused"}},
      {"end before begin", raw_file(header_of(R"({"dtype":"U8","shape":[0],"data_offsets":[8,0]})", kB), kData),
       {"'a'", "end before"}},
      {"negative offset", raw_file(header_of(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})", kB), kData),
       {"'a'", "data_offsets"}},
      {"fractional dimension",
       raw_file(header_of(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})", kB), kData), {"'a'", "shape"}},
      {"missing field", raw_file(header_of(R"({"dtype":"F32","shape":[2]})", kB), kData),
       {"'a'", "data_offsets"}},
      {"entry not an object", raw_file(header_of("7", kB), kData), {"'a'", "not a JSON object"}},
      {"duplicate name", raw_file("{\"a\":" + kA + ",\"a\":" + kA + "}", kData.substr(0, 8)), {"'a'", "twice"}},
      {"metadata not strings", raw_file(header_of(kA, kB, R"(,"__metadata__":{"epoch":3})"), kData),
       {"'epoch'", "not a string"}},
      {"huge shape",
       raw_file(header_of(R"({"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]})", kB), kData),
       {"'a'", "too large"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(p, c.bytes);
    std::vector<std::string> parts = c.expect;
    parts.push_back(p);
    expect_error([&] { load_safetensors(p); }, parts);
  }
  std::string missing = p + ".does_not_exist";
  expect_error([&] { load_safetensors(missing); }, {missing, "cannot open"});
}
