#include "advcl/run/resume_check.h"

#include <set>

#include <nlohmann/json.hpp>

#include "engine/common.h"
#include "engine/safetensors.h"

namespace advcl::cli {

bool may_change_on_resume(const std::string& stage, const std::string& option) {
  static const std::set<std::string> any_stage{"threads",    "workers",    "log-every", "device",
                                               "precision",  "stop-epoch", "save-steps", "save-epoch",
                                               "resume",     "no-resume",  "out",       "dist-check-every", "detect-anomaly"};
  if (any_stage.count(option)) return true;
  return stage.rfind("finetune", 0) == 0 && option == "epochs";
}

std::map<std::string, std::string> parse_options_json(const std::string& json, const std::string& source) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) fail(source, ": the stored options are not a JSON object of strings");
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_string())
      fail(source, ": the stored options are not a JSON object of strings (", it.key(), " is ", it->type_name(), ")");
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

std::vector<std::string> option_differences(const std::string& stage, const std::map<std::string, std::string>& stored,
                                            const std::map<std::string, std::string>& now) {
  std::vector<std::string> diffs;
  for (const auto& [key, value] : now) {
    auto it = stored.find(key);
    if (it == stored.end() || it->second == value || may_change_on_resume(stage, key)) continue;
    diffs.push_back("--" + key + ": '" + it->second + "' in the checkpoint, '" + value + "' now");
  }
  return diffs;
}

void check_checkpoint_stage(const RunDir& dir, const std::string& path, const std::map<std::string, std::string>& md,
                            const std::string& stage) {
  auto st = md.find("stage");
  if (st == md.end())
    fail("--out ", dir.path(), ": ", path, " is not an advcl training checkpoint (no 'stage' in its metadata); "
         "choose another --out");
  if (st->second != stage)
    fail("--out ", dir.path(), ": this folder holds a ", st->second, " run (", path, "), not a ", stage,
         " run; choose another --out");
}

bool check_resume(const RunDir& dir, const std::string& stage, const std::string& options, bool resume_flag,
                  bool no_resume) {
  if (resume_flag && no_resume) fail("--resume and --no-resume exclude each other");
  if (no_resume) return false;
  const std::string path = dir.last_checkpoint();
  if (!dir.has_checkpoint()) {
    if (resume_flag)
      fail("--resume: ", dir.path(), " holds no checkpoint to resume from (no ", path,
           "); drop --resume to start a new run there");
    return false;
  }
  const std::map<std::string, std::string> md = load_safetensors(path).metadata;
  check_checkpoint_stage(dir, path, md, stage);
  auto opts = md.find("options");
  if (opts == md.end()) return true;  // (a checkpoint without options: nothing to compare)
  std::vector<std::string> diffs = option_differences(stage, parse_options_json(opts->second, path),
                                                      parse_options_json(options, "this run's options"));
  if (diffs.empty()) return true;
  std::string list;
  for (const std::string& d : diffs) list += "\n  " + d;
  fail(path, ": cannot resume with different options (", diffs.size(), "):", list,
       "\nrerun with the checkpoint's values to resume, or start afresh with --no-resume (or another --out); "
       "--threads, --workers, --log-every, --device, --precision, --stop-epoch, --save-steps and --save-epoch may "
       "change (docs/reliability.md)");
}

}  // namespace advcl::cli
