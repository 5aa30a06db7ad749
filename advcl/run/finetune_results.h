// The evaluation history of a finetuning run: SA and RA per evaluated epoch,
// the best-RA epoch (the reference selects on the test set) and the last one;
// results.json and the end-of-run table.
//
// The history travels in the checkpoint metadata (encode / decode), so a
// resumed run reports every epoch, not only those after the restart.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "advcl/run/json_out.h"

namespace advcl::method {

struct EpochEval {
  int64_t epoch = 0;
  int64_t n = 0;        // test images evaluated
  double sa = 0, ra = 0;  // fractions in [0, 1]
  double seconds = 0;   // evaluation time
};

class FinetuneHistory {
 public:
  // Adds an evaluation (replacing an earlier one of the same epoch, as when an
  // interrupted epoch is redone after resume); keeps epoch order.
  void add(const EpochEval& e);
  const std::vector<EpochEval>& evals() const { return evals_; }
  bool empty() const { return evals_.empty(); }
  // The highest RA (the earliest epoch among equals, as a strict `>` update
  // keeps it); null when empty.
  const EpochEval* best() const;
  const EpochEval* last() const { return evals_.empty() ? nullptr : &evals_.back(); }

  // "epoch,n,sa,ra,seconds;..." with every digit kept (metadata is strings).
  std::string encode() const;
  // The inverse; `source` names the checkpoint in errors.
  static FinetuneHistory decode(const std::string& text, const std::string& source);

 private:
  std::vector<EpochEval> evals_;
};

struct FinetuneReport {
  std::string mode;                  // slf, alf, aff
  std::string pretrained;            // the --ckpt the encoder came from
  std::string finetuned;             // the run's last.safetensors
  int64_t epochs = 0, epochs_done = 0;
  std::string attack;                // e.g. "PGD-20, eps 8/255, step 2/255, random start"
  cli::OrderedJson settings;         // the values in force (mode defaults resolved), an object
  std::string options_json;          // the run's options as given (cli::options_json's text)
};

// results.json: mode, checkpoints, per-epoch SA/RA (percent), best and last.
std::string results_json(const FinetuneHistory& h, const FinetuneReport& r);
// A plain-text table of the evaluations with the best and last rows marked.
std::string results_table(const FinetuneHistory& h, const FinetuneReport& r);

}  // namespace advcl::method
