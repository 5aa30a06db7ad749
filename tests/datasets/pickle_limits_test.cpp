// The unpickler's bounds against hostile files: nesting depth, self-containing
// values, opcode count, and a teardown that no depth can overflow. Before the
// bound, b'\x80\x02N' + b'\x85' * 300000 + b'.' crashed the process (the
// recursive destructor of the 300,000-deep tuple chain overflowed the stack).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "advcl/pretrain/pseudo_labels.h"
#include "datasets/cifar.h"
#include "datasets/pickle.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl::data;
using advcl::data::testing::error_of;
using advcl::data::testing::TempDir;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// None wrapped in `depth` one-element tuples (TUPLE1): a value nested depth + 1 levels.
std::vector<uint8_t> nested_tuples(size_t depth) {
  return bytes_of(std::string("\x80\x02N") + std::string(depth, '\x85') + ".");
}

}  // namespace

TEST(PickleLimits, DeepTupleChainIsAnErrorNamingTheFileNotACrash) {
  std::string msg = error_of([] { unpickle(nested_tuples(300000), "deep.pkl"); });
  EXPECT_NE(msg.find("deep.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("levels deep"), std::string::npos) << msg;
}

TEST(PickleLimits, DepthBoundIsExact) {
  // The tuple chain of n TUPLE1 opcodes is n + 1 levels deep (None at the bottom).
  PyRef ok = unpickle(nested_tuples(kMaxPickleDepth - 1), "ok.pkl");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->kind, PyValue::Kind::Tuple);
  EXPECT_NE(error_of([] { unpickle(nested_tuples(kMaxPickleDepth), "deep.pkl"); }).find("levels deep"),
            std::string::npos);
}

// A chain of lists built top-down: each list is appended to the one above it
// while still empty, so the depth shows only in the finished tree (a bound
// counted when values are made would miss it). R.extend([L0, L1, ..., Ln])
// with L(i-1) = [Li]: L0 is n + 1 levels deep, R n + 2.
std::vector<uint8_t> list_chain(int n) {
  std::string p = "\x80\x02](]q";  // R, MARK, L0 memoised in slot 0
  p += '\0';
  for (int i = 1; i <= n; ++i) {
    const char slot = static_cast<char>(i % 2);
    p += std::string("]q") + slot;  // Li, memoised
    p += "a";                       // appended to L(i-1), which stays on the stack
    p += std::string("h") + slot;   // Li back on the stack, for the next level
  }
  p += "e.";  // APPENDS: every list of the chain into R
  return bytes_of(p);
}

TEST(PickleLimits, DepthBuiltByAppendingToEarlierListsIsCaught) {
  PyRef ok = unpickle(list_chain(10), "chain.pkl");
  ASSERT_EQ(ok->kind, PyValue::Kind::List);
  ASSERT_EQ(ok->items.size(), 11u);
  int depth = 0;
  for (const PyValue* v = ok->items[0].get(); !v->items.empty(); v = v->items[0].get()) ++depth;
  EXPECT_EQ(depth, 10);
  std::string msg = error_of([] { unpickle(list_chain(2 * static_cast<int>(kMaxPickleDepth)), "chain.pkl"); });
  EXPECT_NE(msg.find("chain.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("levels deep"), std::string::npos) << msg;
}

TEST(PickleLimits, ListAppendedToItselfIsRefused) {
  // l = []; l.append(l)  ->  ] q0 h0 a .
  std::string msg = error_of([] { unpickle(bytes_of(std::string("\x80\x02]q\x00h\x00" "a.", 9)), "self.pkl"); });
  EXPECT_NE(msg.find("self.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("contains itself"), std::string::npos) << msg;
}

TEST(PickleLimits, SharedValuesAreNotCountedAsDepth) {
  // t = (x, x) nested 40 times through the memo: 2^40 paths, 41 levels. The
  // check must memoise (not walk every path) and accept it.
  std::string p = "\x80\x02N";
  for (int i = 0; i < 40; ++i) p += std::string("q\x00h\x00\x86", 5);  // memoise the top, fetch it again, TUPLE2
  p += ".";
  PyRef v = unpickle(bytes_of(p), "shared.pkl");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->items.size(), 2u);
}

TEST(PickleLimits, OpcodeCountIsBounded) {
  // MARK costs nothing to parse but grows a vector: the count bound stops it.
  std::string p = "\x80\x02" + std::string(kMaxPickleOps + 10, '(') + "N.";
  std::string msg = error_of([&] { unpickle(bytes_of(p), "marks.pkl"); });
  EXPECT_NE(msg.find("marks.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("opcodes"), std::string::npos) << msg;
}

TEST(PickleLimits, DeepTreeBuiltByHandIsDestroyedWithoutRecursion) {
  // One million levels: a recursive destructor needs far more stack than a thread has.
  PyRef root = std::make_shared<PyValue>();
  PyValue* at = root.get();
  for (int i = 0; i < 1000000; ++i) {
    auto next = std::make_shared<PyValue>();
    next->kind = i % 2 ? PyValue::Kind::List : PyValue::Kind::Dict;
    if (i % 2)
      at->items.push_back(next);
    else
      at->dict.emplace_back(std::make_shared<PyValue>(), next);
    at = next.get();
  }
  root.reset();  // returns, instead of overflowing the stack
  SUCCEED();
}

TEST(PickleLimits, DeepPickleThroughThePseudoLabelAndCifarReaders) {
  TempDir t;
  advcl::data::testing::write_file(t / "deep.pkl", nested_tuples(300000));
  std::string msg = error_of([&] { advcl::method::load_pseudo_labels(t / "deep.pkl"); });
  EXPECT_NE(msg.find("deep.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("levels deep"), std::string::npos) << msg;
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  msg = error_of([&] { decode_cifar_pickle(nested_tuples(300000), 10, "data_batch_1", images, labels); });
  EXPECT_NE(msg.find("data_batch_1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("levels deep"), std::string::npos) << msg;
}
