#include "advcl/run/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "advcl/run/json_out.h"
#include "nn/parallel/communicator.h"
#include "engine/atomic_file.h"
#include "engine/common.h"

namespace advcl::cli {

namespace fs = std::filesystem;

RunDir::RunDir(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("--out: the output folder must not be empty");
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec || !fs::is_directory(path_)) fail("--out: cannot create the output folder '", path_, "': ", ec.message());
  // Only rank 0 writes (the other ranks of a data-parallel job share its folder).
  if (dist::world().is_root()) lock();
}

RunDir::~RunDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // drops the flock
}

void RunDir::lock() {
  const std::string lock_path = file("run.lock");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    fail("--out: cannot create the lock file ", lock_path, ": ", std::strerror(err));
  }
  // flock, not fcntl locks: a flock belongs to the open file, so a second
  // RunDir on the same folder is refused even inside one process, and the
  // kernel releases it when the process ends, however it ends.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t got = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string holder = got > 0 ? std::string(buf, static_cast<size_t>(got)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (err != EWOULDBLOCK)
      fail("--out: cannot lock the run folder '", path_, "' (", lock_path, "): ", std::strerror(err));
    fail("--out: the run folder '", path_, "' is in use by another advcl process (PID ",
         holder.empty() ? std::string("unknown") : holder, ", which holds ", lock_path,
         "); wait for it to finish, stop it, or choose another --out");
  }
  // The holder's PID, for the message above (the lock itself is the flock).
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    ::close(fd);
    fail("--out: cannot write the lock file ", lock_path, ": ", std::strerror(err));
  }
  lock_fd_ = fd;
}

std::string RunDir::epoch_checkpoint(int64_t epoch) const { return file("epoch_" + std::to_string(epoch) + ".safetensors"); }

bool RunDir::has_checkpoint() const { return fs::exists(last_checkpoint()); }

void RunDir::log_metrics(const nlohmann::json& fields) const {
  append_durably(file("metrics.jsonl"), json_line(fields) + "\n");
}

void RunDir::write_text(const std::string& name, const std::string& text) const {
  write_file_atomically(file(name), text);
}

std::string steps_text(int64_t images, int64_t batch_size, int64_t steps) {
  auto plural = [](int64_t n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); };
  if (steps <= 0 || batch_size <= 0) return plural(steps, "step");
  const int64_t full = std::min(images, batch_size);
  std::string s = plural(steps, "step") + " of " + plural(full, "image");
  if (images < batch_size)
    return s + " (--batch-size " + std::to_string(batch_size) + " is larger than the " + plural(images, "image") +
           ")";
  const int64_t covered = steps * batch_size;
  if (covered > images) return s + " (the last has " + std::to_string(images - (steps - 1) * batch_size) + ")";
  if (covered < images) return s + " (" + plural(images - covered, "image") + " left out of each epoch)";
  return s;
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
