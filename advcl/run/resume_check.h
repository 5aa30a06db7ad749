// Whether a training command may resume the run in its --out folder, decided
// before the command writes anything there (run.json included):
//   * --no-resume starts afresh; --resume with no checkpoint is an error;
//   * a checkpoint of another stage is refused ("this folder holds a
//     pretrain run"), before any tensor is compared;
//   * the options stored in the checkpoint ("options" metadata, the JSON of
//     run.json) must equal this run's, except those that do not change what
//     is computed (may_change_on_resume); every other difference is listed,
//     with both values, and refused: a resumed run must be the run it
//     continues, not a mixture of two.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "advcl/run/run_dir.h"

namespace advcl::cli {

// Whether `option` (its long name without dashes, as in run.json) may differ
// between a run of `stage` and its resumption: how fast or where it
// computes, how often it logs or saves, when it stops. finetune also lets
// --epochs change (its learning rate steps at --milestones, so a longer run
// continues the same schedule); the contrastive stages' cosine schedule spans
// --epoch, so there it is fixed (--stop-epoch stops early).
bool may_change_on_resume(const std::string& stage, const std::string& option);

// The options JSON that options_json() writes (a flat object of strings);
// an error naming `source` if it is not one.
std::map<std::string, std::string> parse_options_json(const std::string& json, const std::string& source);

// "--learning_rate: 0.5 in the checkpoint, 0.1 now" for every option that
// differs and may not; options missing on one side (a checkpoint of another
// advcl version) are not compared.
std::vector<std::string> option_differences(const std::string& stage, const std::map<std::string, std::string>& stored,
                                            const std::map<std::string, std::string>& now);

// The checks above for `dir`; `options` is this run's options_json().
// Returns whether the run will resume (a checkpoint exists and --no-resume is off).
// Fails unless the checkpoint metadata `md` of `path` in `dir` is an advcl
// training checkpoint of `stage`: a folder of another stage's run is named as
// such, not reported as a list of missing tensors.
void check_checkpoint_stage(const RunDir& dir, const std::string& path, const std::map<std::string, std::string>& md,
                            const std::string& stage);
bool check_resume(const RunDir& dir, const std::string& stage, const std::string& options, bool resume_flag,
                  bool no_resume);

}  // namespace advcl::cli
