// A small unpickler for the CIFAR "python version" files. It understands the
// opcodes that Python 2's cPickle (protocol 2, the official files) and
// Python 3's pickle (protocols 2-4, files re-saved by users) emit for a dict
// of byte strings, lists of ints and one numpy uint8 array, and nothing more:
// any other opcode, and any global other than the few below, is an error
// naming the file. No code from the file is ever "called": the globals are
// recognised by name and interpreted here.
//   numpy.core.multiarray._reconstruct / numpy._core.multiarray._reconstruct,
//   numpy.ndarray, numpy.dtype   -> an array (shape, dtype, raw bytes)
//   _codecs.encode(str, 'latin1') -> bytes (how Python 3 writes bytes at protocol 2)
//
// Hostile files are bounded: at most kMaxPickleBytes of input and
// kMaxPickleOps opcodes (so memory stays proportional to the file), results
// nested at most kMaxPickleDepth levels and never containing themselves.
// Values are torn down without recursion, so no nesting can overflow the
// stack, and nothing a failed parse made outlives it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace advcl::data {

constexpr uint64_t kMaxPickleBytes = uint64_t{1} << 30;  // 1 GiB
constexpr uint64_t kMaxPickleOps = uint64_t{1} << 22;    // 4,194,304
constexpr size_t kMaxPickleDepth = 256;

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

struct PyValue {
  enum class Kind { None, Bool, Int, Bytes, Str, List, Tuple, Dict, Global, Array, DType };
  Kind kind = Kind::None;
  int64_t i = 0;                 // Bool, Int
  std::string s;                 // Bytes, Str (UTF-8); Global: "module.name"; DType: "u1"
  std::vector<PyRef> items;      // List, Tuple
  std::vector<std::pair<PyRef, PyRef>> dict;  // Dict, in insertion order
  // Array: shape, element type ("u1", "<i8", ...), C-order bytes
  std::vector<int64_t> shape;
  std::string dtype;
  std::vector<uint8_t> bytes;

  PyValue() = default;
  PyValue(const PyValue&) = delete;
  PyValue& operator=(const PyValue&) = delete;
  ~PyValue();  // without recursion, however deep the tree

  // Dict lookup by key text, accepting both b'key' and 'key'; nullptr if absent.
  PyRef get(const std::string& key) const;
  const char* kind_name() const;
};

// Parses a whole pickle; `name` (the file) goes into every error message.
PyRef unpickle(const std::vector<uint8_t>& data, const std::string& name);

}  // namespace advcl::data
