// The values a training step reports (loss, its terms, batch accuracy), kept
// on the model's device: reading each with item() made every step wait for
// the GPU. The epoch loop (advcl/run/train_loop.h) reads them only on the steps
// that print or log, all at once.
#pragma once
#include <map>
#include <string>

#include "engine/tensor.h"

namespace advcl::method {

// name -> 0-D tensor (any floating dtype), all on one device, no autograd history.
using StepValues = std::map<std::string, Tensor>;

// The values on the host, in one read: converted to float64 and concatenated
// on their device, then copied with one to_vector (one host round trip;
// none for no values).
std::map<std::string, double> read_values(const StepValues& values);

}  // namespace advcl::method
