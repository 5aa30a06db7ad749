// Writers of small CIFAR files in the official formats, for the tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tests/datasets/dataset_test_util.h"

namespace advcl::data::testing {

// Binary records; image k (pattern index first + k) has labels[k]. For
// CIFAR-100 the coarse label written is fine % 20.
inline std::vector<uint8_t> cifar_binary(int classes, int64_t first, const std::vector<int>& labels) {
  std::vector<uint8_t> out;
  for (size_t k = 0; k < labels.size(); ++k) {
    if (classes == 100) out.push_back(static_cast<uint8_t>(labels[k] % 20));
    out.push_back(static_cast<uint8_t>(labels[k]));
    for (int64_t j = 0; j < 3072; ++j) out.push_back(pattern(first + static_cast<int64_t>(k), j));
  }
  return out;
}

// A pickle assembled byte by byte the way Python 2's cPickle (protocol 2)
// writes the official CIFAR batches: str keys as SHORT_BINSTRING, the array
// through numpy.core.multiarray._reconstruct with its data as one BINSTRING,
// the labels list in MARK ... APPENDS groups, memo puts after each object.
class Py2Pickle {
 public:
  std::vector<uint8_t> b;
  uint32_t memo = 1;
  void op(uint8_t o) { b.push_back(o); }
  void raw(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void put() {
    if (memo < 256) {
      op('q');
      op(static_cast<uint8_t>(memo));
    } else {
      op('r');
      u32(memo);
    }
    ++memo;
  }
  void sbs(const std::string& s) {  // SHORT_BINSTRING
    op('U');
    op(static_cast<uint8_t>(s.size()));
    raw(s);
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      op(static_cast<uint8_t>(v));
      op(static_cast<uint8_t>(v >> 8));
    } else {
      op('J');
      u32(static_cast<uint32_t>(v));
    }
  }
};

// One CIFAR python batch dict: keys batch_label, data (n x 3072 from the
// pattern, starting at image `first`), `label_key` -> labels, filenames.
// With pad_memo, the memo is pushed past 255 so LONG_BINPUT/LONG_BINGET occur.
inline std::vector<uint8_t> py2_cifar_pickle(int64_t first, const std::vector<int>& labels,
                                             const std::string& label_key = "labels", bool pad_memo = false) {
  Py2Pickle p;
  const int64_t n = static_cast<int64_t>(labels.size());
  p.op(0x80);
  p.op(2);
  p.op('}');
  p.put();
  p.op('(');
  p.sbs("batch_label");
  p.put();
  p.sbs("training batch 1 of 5");
  p.put();
  if (pad_memo) {  // a list of 300 memoised strings, as the real 'filenames' list
    p.sbs("filenames");
    p.put();
    p.op(']');
    p.put();
    p.op('(');
    for (int i = 0; i < 300; ++i) {
      p.sbs("f" + std::to_string(i) + ".png");
      p.put();
    }
    p.op('e');
  }
  p.sbs("data");
  p.put();
  p.op('c');
  p.raw("numpy.core.multiarray\n_reconstruct\n");
  p.put();
  p.op('c');
  p.raw("numpy\nndarray\n");
  p.put();
  p.integer(0);
  p.op(0x85);
  p.sbs("b");
  p.op(0x87);
  p.op('R');
  p.put();
  p.op('(');
  p.integer(1);
  p.integer(n);
  p.integer(3072);
  p.op(0x86);
  p.op('c');
  p.raw("numpy\ndtype\n");
  uint32_t dtype_memo = p.memo;
  p.put();
  p.sbs("u1");
  p.integer(0);
  p.integer(1);
  p.op(0x87);
  p.op('R');
  p.put();
  p.op('(');
  p.integer(3);
  p.sbs("|");
  p.op('N');
  p.op('N');
  p.op('N');
  p.op('J');
  p.u32(0xffffffffu);
  p.op('J');
  p.u32(0xffffffffu);
  p.integer(0);
  p.op('t');
  p.op('b');
  p.op(0x89);
  p.op('T');
  p.u32(static_cast<uint32_t>(n * 3072));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 3072; ++j) p.op(pattern(first + i, j));
  p.op('t');
  p.op('b');
  p.put();
  p.sbs(label_key);
  p.put();
  p.op(']');
  p.put();
  // Labels in APPENDS groups of at most 2 (cPickle uses 1000), the first as LONG1.
  for (int64_t i = 0; i < n; i += 2) {
    p.op('(');
    for (int64_t k = i; k < std::min(n, i + 2); ++k) {
      if (k == 0) {
        p.op(0x8a);
        p.op(1);
        p.op(static_cast<uint8_t>(labels[0]));
      } else {
        p.integer(labels[k]);
      }
    }
    p.op('e');
  }
  if (pad_memo) {  // a key that refers back to the dtype global by memo
    p.sbs("dtype_again");
    p.put();
    if (dtype_memo < 256) {
      p.op('h');
      p.op(static_cast<uint8_t>(dtype_memo));
    } else {
      p.op('j');
      p.u32(dtype_memo);
    }
    // also a LONG_BINGET of a memo entry above 255
    p.sbs("late");
    p.put();
    p.op('j');
    p.u32(p.memo - 2);
  }
  p.op('u');
  p.op('.');
  return p.b;
}

}  // namespace advcl::data::testing
