// Bad pseudo-label files get messages that name the file and what is wrong
// (they were a bare "stoll", or a C++ stream error for a folder).
#include <gtest/gtest.h>

#include "advcl/pretrain/pseudo_labels.h"
#include "engine/safetensors.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using data::testing::error_of;
using data::testing::TempDir;

namespace {

// {name: None} at protocol 2: PROTO, EMPTY_DICT, BINUNICODE name, NONE, SETITEM, STOP.
std::vector<uint8_t> pickled_key(const std::string& name) {
  std::string p = "\x80\x02}X";
  uint32_t n = static_cast<uint32_t>(name.size());
  for (int i = 0; i < 4; ++i) p += static_cast<char>((n >> (8 * i)) & 0xff);
  p += name + "Ns.";
  return std::vector<uint8_t>(p.begin(), p.end());
}

}  // namespace

TEST(PseudoLabelFiles, NonNumericKeyInAPickleNamesTheKey) {
  TempDir t;
  data::testing::write_file(t / "labels.pkl", pickled_key("pseudo_train_abc"));
  std::string msg = error_of([&] { method::load_pseudo_labels(t / "labels.pkl"); });
  EXPECT_NE(msg.find(t / "labels.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'pseudo_train_abc' does not end in a cluster count"), std::string::npos) << msg;
}

TEST(PseudoLabelFiles, NonNumericOrTrailingTensorNameIsRefused) {
  TempDir t;
  for (const char* name : {"pseudo_train_abc", "pseudo_train_12abc", "pseudo_train_0"}) {
    save_safetensors(t / "labels.safetensors", {{name, Tensor::from_vector<int32_t>({0, 1, 0}, {3})}});
    std::string msg = error_of([&] { method::load_pseudo_labels(t / "labels.safetensors"); });
    EXPECT_NE(msg.find(t / "labels.safetensors"), std::string::npos) << name << ": " << msg;
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
}

TEST(PseudoLabelFiles, TwoSetsForOneKAreRefused) {
  TempDir t;
  save_safetensors(t / "labels.safetensors", {{"pseudo_train_2", Tensor::from_vector<int32_t>({0, 1}, {2})},
                                              {"pseudo_train_02", Tensor::from_vector<int32_t>({1, 0}, {2})}});
  std::string msg = error_of([&] { method::load_pseudo_labels(t / "labels.safetensors"); });
  EXPECT_NE(msg.find("two label sets for k=2"), std::string::npos) << msg;
}

TEST(PseudoLabelFiles, AFolderIsNamedAsAFolder) {
  TempDir t;
  data::testing::make_dirs(t / "labels");
  std::string msg = error_of([&] { method::load_pseudo_labels(t / "labels"); });
  EXPECT_NE(msg.find(t / "labels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is a folder"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("basic_filebuf"), std::string::npos) << msg;
}
