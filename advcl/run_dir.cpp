#include "advcl/run_dir.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/common.h"

namespace advcl::cli {

namespace fs = std::filesystem;

RunDir::RunDir(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("--out: the output folder must not be empty");
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec || !fs::is_directory(path_)) fail("--out: cannot create the output folder '", path_, "': ", ec.message());
}

std::string RunDir::epoch_checkpoint(int64_t epoch) const { return file("epoch_" + std::to_string(epoch) + ".safetensors"); }

bool RunDir::has_checkpoint() const { return fs::exists(last_checkpoint()); }

void RunDir::log_metrics(const std::map<std::string, std::string>& fields) const {
  std::ofstream out(file("metrics.jsonl"), std::ios::app);
  if (!out) fail("cannot write ", file("metrics.jsonl"));
  out << "{";
  bool first = true;
  for (auto& [k, v] : fields) {
    out << (first ? "" : ", ") << json_str(k) << ": " << v;
    first = false;
  }
  out << "}\n";
}

void RunDir::write_text(const std::string& name, const std::string& text) const {
  std::string tmp = file(name + ".tmp");
  {
    std::ofstream out(tmp);
    if (!out) fail("cannot write ", tmp);
    out << text;
  }
  fs::rename(tmp, file(name));
}

std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    if (c == '\n') {
      r += "\\n";
      continue;
    }
    r += c;
  }
  return r + "\"";
}

std::string json_num(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

Progress::Progress(std::string stage, int64_t epochs, int64_t steps_per_epoch)
    : stage_(std::move(stage)), epochs_(epochs), steps_(steps_per_epoch), epoch_start_(std::chrono::steady_clock::now()) {}

void Progress::begin_epoch() {
  images_ = 0;
  epoch_start_ = std::chrono::steady_clock::now();
}

double Progress::epoch_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
}

void Progress::step(int64_t epoch, int64_t step, int64_t images, const std::string& values, int64_t every_steps,
                    bool force) {
  images_ += images;
  if (!force && (every_steps <= 0 || (step + 1) % every_steps != 0)) return;
  double secs = epoch_seconds();
  double rate = secs > 0 ? static_cast<double>(images_) / secs : 0;
  double eta = step + 1 > 0 ? secs / static_cast<double>(step + 1) * static_cast<double>(steps_ - step - 1) : 0;
  std::fprintf(stderr, "[%s] epoch %lld/%lld step %lld/%lld  %s  %.1f img/s  epoch ETA %.0fs\n", stage_.c_str(),
               static_cast<long long>(epoch), static_cast<long long>(epochs_), static_cast<long long>(step + 1),
               static_cast<long long>(steps_), values.c_str(), rate, eta);
  std::fflush(stderr);
}

}  // namespace advcl::cli
