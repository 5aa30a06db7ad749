// Reading and writing the safetensors format (the format of Hugging Face's
// `safetensors` package), used for checkpoints and for the golden test data.
//
// Layout: an 8-byte little-endian unsigned header length N; N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//    ..., "__metadata__": {"key": "string value"}}
// padded with spaces; then the raw little-endian bytes of every tensor, with
// data_offsets relative to the end of the header. The byte buffer must be
// covered exactly (no overlaps, no holes), as the format's specification says.
//
// Supported dtypes: F32, F64, BF16, I32, I64, U8 (advcl's DTypes). Every
// error is an advcl::Error naming the file and, where one is at fault, the
// tensor.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace advcl {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // CPU tensors, not requiring gradients
  std::map<std::string, std::string> metadata;
};

// Writes `tensors` (in this order in the data section; tensors on a GPU are
// copied to the CPU first) and `metadata` to `path`, atomically (AtomicFile,
// engine/atomic_file.h): the bytes go to a temporary unique to this writer,
// are fsync'ed, then renamed over `path`, so a crash or a failed write (full
// disk) leaves the old file or the new one, never half of one.
// Names must be unique, non-empty and not "__metadata__". (From a map `m`,
// pass {m.begin(), m.end()}.)
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates the whole file.
SafetensorsFile load_safetensors(const std::string& path);

// The format's dtype code ("F32", ...) of a DType, and back (the latter throws
// on codes advcl does not support, naming the code).
const char* safetensors_dtype_code(DType t);
DType safetensors_dtype_from_code(const std::string& code);

}  // namespace advcl
