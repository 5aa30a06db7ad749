// The built `advcl` binary against hostile but fair use, on small files the
// test writes: each case asserts the exit code, the key words of the message,
// and that nothing was lost (the previous checkpoint still loads, bit for
// bit). The binary is the one next to this test binary (build/<variant>/bin);
// the cases skip, saying so, when it has not been built.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

#include "engine/safetensors.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using data::testing::read_file;
using data::testing::TempDir;
using data::testing::write_idx_split;
namespace fs = std::filesystem;

namespace {

std::string advcl_binary() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : (self.parent_path() / "advcl").string();
}

std::string text_of(const std::string& path) {
  auto b = read_file(path);
  return std::string(b.begin(), b.end());
}

// Each run with a file-size limit writes its output through a pipe to a
// `cat` without the limit (the log file would be limited too): the cat's
// pid, reaped after the run's.
std::map<pid_t, pid_t> g_log_copier;

// Starts the binary with `args`, stdout and stderr into `log`, files limited
// to `max_file_bytes` (RLIMIT_FSIZE, as a full disk: writes fail).
pid_t start(const std::vector<std::string>& args, const std::string& log, rlim_t max_file_bytes = RLIM_INFINITY) {
  std::vector<std::string> all{advcl_binary()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return -1;
  int out_fd = log_fd;
  pid_t copier = -1;
  int pipe_fd[2] = {-1, -1};
  if (max_file_bytes != RLIM_INFINITY) {
    if (::pipe2(pipe_fd, O_CLOEXEC) != 0) return -1;
    copier = ::fork();
    if (copier == 0) {
      ::dup2(pipe_fd[0], 0);
      ::dup2(log_fd, 1);
      ::execl("/bin/cat", "cat", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    out_fd = pipe_fd[1];
  }
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::setenv("OMP_NUM_THREADS", "1", 1);
    if (max_file_bytes != RLIM_INFINITY) {
      rlimit lim{max_file_bytes, max_file_bytes};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (copier > 0) {
    ::close(pipe_fd[0]);
    ::close(pipe_fd[1]);
    g_log_copier[pid] = copier;
  }
  return pid;
}

// The exit code as a shell shows it (128 + signal when killed by one). A
// process still running after `timeout_s` is killed (a regression must fail
// the test, not hang it): 137.
int wait_code(pid_t pid, int timeout_s = 300) {
  int status = 0;
  for (int i = 0; i < timeout_s * 20; ++i) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      auto copier = g_log_copier.find(pid);
      if (copier != g_log_copier.end()) {  // the log is complete once the copier has seen the end of the pipe
        ::waitpid(copier->second, nullptr, 0);
        g_log_copier.erase(copier);
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return 128 + SIGKILL;
}

// Kills a background run that a failed assertion left behind.
struct Reaper {
  pid_t pid;
  ~Reaper() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

struct Result {
  int code;
  std::string output;
};

Result run(const std::vector<std::string>& args, const std::string& log, rlim_t max_file_bytes = RLIM_INFINITY) {
  int code = wait_code(start(args, log, max_file_bytes));
  return {code, text_of(log)};
}

// Files in `dir` whose name marks a leftover temporary.
std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
  return out;
}

class ReliabilityCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(advcl_binary())) GTEST_SKIP() << "no advcl binary next to the test binary (" << advcl_binary() << ")";
    write_idx_split(t / "data", "train", 64);
    write_idx_split(t / "data", "t10k", 32);
  }
  // A quick SimCLR run on the synthetic data (4 steps of 16 images an epoch).
  std::vector<std::string> simclr(const std::string& out, int epochs, std::vector<std::string> extra = {},
                                  int batch_size = 16) {
    std::vector<std::string> a{"simclr", "--data", t / "data", "--dataset", "mnist", "--size", "8", "--width", "4",
                               "--batch-size", std::to_string(batch_size), "--epoch", std::to_string(epochs), "--out", t / out,
                               "--workers", "0", "--log-every", "0", "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Waits until `out`/run.lock names `pid` (the run holds its folder).
  bool wait_for_lock(const std::string& out, pid_t pid) {
    return wait_until([&] { return text_of(t / (out + "/run.lock")) == std::to_string(pid) + "\n"; });
  }
  // Waits until the run's log shows its first epoch done: the training loop
  // (and its signal handling) is running.
  bool wait_for_training(const std::string& log) {
    return wait_until([&] { return text_of(log).find("] epoch 1/") != std::string::npos; });
  }
  template <class F>
  bool wait_until(F done) {
    for (int i = 0; i < 1200; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  TempDir t;
};

// --- the run folder's lock, signals ------------------------------------------

TEST_F(ReliabilityCli, SecondRunOnAFolderIsRefusedNamingTheHolder) {
  pid_t first = start(simclr("run", 100000), t / "first.log");
  Reaper reap{first};
  ASSERT_TRUE(wait_for_lock("run", first)) << text_of(t / "first.log");
  ASSERT_TRUE(wait_for_training(t / "first.log")) << text_of(t / "first.log");
  const std::string run_json = text_of(t / "run/run.json");
  int second_code = wait_code(start(simclr("run", 100000), t / "second.log"), 60);
  Result second{second_code, text_of(t / "second.log")};
  EXPECT_EQ(second.code, 1) << second.output;
  EXPECT_NE(second.output.find("in use by another advcl process"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("PID " + std::to_string(first)), std::string::npos) << second.output;
  EXPECT_EQ(text_of(t / "run/run.json"), run_json) << "the refused run must not touch the folder";
  // SIGTERM: the step in progress ends, its checkpoint is written, exit 143.
  ::kill(first, SIGTERM);
  EXPECT_EQ(wait_code(first), 143) << text_of(t / "first.log");
  EXPECT_NE(text_of(t / "first.log").find("stopped by signal 15"), std::string::npos) << text_of(t / "first.log");
  EXPECT_NO_THROW(load_safetensors(t / "run/last.safetensors"));
  EXPECT_TRUE(temporaries(t / "run").empty());
}

TEST_F(ReliabilityCli, SigintExits130) {
  pid_t p = start(simclr("run", 100000), t / "run.log");
  Reaper reap{p};
  ASSERT_TRUE(wait_for_training(t / "run.log")) << text_of(t / "run.log");
  ::kill(p, SIGINT);
  EXPECT_EQ(wait_code(p), 130) << text_of(t / "run.log");
  EXPECT_NE(text_of(t / "run.log").find("stopped by signal 2"), std::string::npos) << text_of(t / "run.log");
}

TEST_F(ReliabilityCli, LockOfAKilledRunIsReleased) {
  pid_t p = start(simclr("run", 100000), t / "killed.log");
  Reaper reap{p};
  ASSERT_TRUE(wait_for_lock("run", p)) << text_of(t / "killed.log");
  ::kill(p, SIGKILL);
  EXPECT_EQ(wait_code(p), 128 + SIGKILL);
  // The lock file is still there, naming the dead process; the lock is not.
  Result again = run(simclr("run", 1, {"--no-resume"}), t / "again.log");
  EXPECT_EQ(again.code, 0) << again.output;
}

// --- full disk: every write checked, the previous files kept ----------------

TEST_F(ReliabilityCli, FullDiskKeepsTheCheckpointAndRunJsonBitIdentical) {
  Result first = run(simclr("run", 2, {"--stop-epoch", "1"}), t / "first.log");
  ASSERT_EQ(first.code, 0) << first.output;
  const auto ckpt = read_file(t / "run/last.safetensors");
  const std::string run_json = text_of(t / "run/run.json");

  // Room for the lock file's PID, not for run.json (the first file a run writes).
  Result none = run(simclr("run", 2), t / "none.log", 16);
  EXPECT_EQ(none.code, 1) << none.output;
  EXPECT_NE(none.output.find("run.json"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("File too large"), std::string::npos) << none.output;
  EXPECT_EQ(text_of(t / "run/run.json"), run_json);
  EXPECT_EQ(read_file(t / "run/last.safetensors"), ckpt);

  // Room for run.json and the metrics lines, not for a checkpoint.
  const rlim_t room = 8192;
  ASSERT_GT(ckpt.size(), room);
  Result small = run(simclr("run", 2), t / "small.log", room);
  EXPECT_EQ(small.code, 1) << small.output;
  EXPECT_NE(small.output.find("last.safetensors"), std::string::npos) << small.output;
  EXPECT_NE(small.output.find("is unchanged"), std::string::npos) << small.output;
  EXPECT_EQ(read_file(t / "run/last.safetensors"), ckpt) << "the previous checkpoint must survive bit for bit";
  EXPECT_NO_THROW(load_safetensors(t / "run/last.safetensors"));
  EXPECT_TRUE(temporaries(t / "run").empty());

  // With room again, the same command resumes and finishes.
  Result done = run(simclr("run", 2), t / "done.log");
  EXPECT_EQ(done.code, 0) << done.output;
  EXPECT_NE(done.output.find("resuming from"), std::string::npos) << done.output;
}

// --- messages that explain ---------------------------------------------------

TEST_F(ReliabilityCli, NonNumericCheckpointMetadataIsNamed) {
  ASSERT_EQ(run(simclr("run", 2, {"--stop-epoch", "1"}), t / "first.log").code, 0);
  SafetensorsFile f = load_safetensors(t / "run/last.safetensors");
  f.metadata["loader_batch"] = "abc";
  save_safetensors(t / "run/last.safetensors", {f.tensors.begin(), f.tensors.end()}, f.metadata);
  const auto edited = read_file(t / "run/last.safetensors");
  Result r = run(simclr("run", 2), t / "resume.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("metadata 'loader_batch' is 'abc', not an integer"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("stoll"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(t / "run/last.safetensors"), edited);
}

TEST_F(ReliabilityCli, DeeplyNestedPickleIsAnErrorNotASegfault) {
  std::string deep = std::string("\x80\x02N", 3) + std::string(300000, '\x85') + ".";
  data::testing::write_file(t / "deep.pkl", std::vector<uint8_t>(deep.begin(), deep.end()));
  Result r = run({"pseudo-labels", "--import", t / "deep.pkl", "--out", t / "labels.safetensors"}, t / "deep.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("deep.pkl"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("levels deep"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(t / "labels.safetensors"));
}

TEST_F(ReliabilityCli, LabelsGivenAFolderOrABadKeyAreNamed) {
  data::testing::make_dirs(t / "labels_dir");
  Result folder = run({"pretrain", "--data", t / "data", "--dataset", "mnist", "--size", "8", "--width", "4",
                       "--labels", t / "labels_dir", "--out", t / "run", "--epoch", "1", "--workers", "0"},
                      t / "folder.log");
  EXPECT_EQ(folder.code, 1) << folder.output;
  EXPECT_NE(folder.output.find("labels_dir: is a folder"), std::string::npos) << folder.output;
  EXPECT_EQ(folder.output.find("basic_filebuf"), std::string::npos) << folder.output;

  save_safetensors(t / "bad.safetensors", {{"pseudo_train_abc", Tensor::from_vector<int32_t>({0, 1}, {2})}});
  Result key = run({"pseudo-labels", "--import", t / "bad.safetensors", "--out", t / "o.safetensors"}, t / "key.log");
  EXPECT_EQ(key.code, 1) << key.output;
  EXPECT_NE(key.output.find("'pseudo_train_abc' does not end in a cluster count"), std::string::npos) << key.output;
}

TEST_F(ReliabilityCli, UnwritableEvalJsonIsFoundBeforeTheEvaluation) {
  // The checkpoint does not exist either: the --json error must come first,
  // before anything (loading, evaluating) is done.
  Result r = run({"eval", "--ckpt", t / "missing.safetensors", "--data", t / "data", "--dataset", "mnist", "--size",
                  "8", "--json", t / "no/such/folder/result.json"},
                 t / "eval.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no/such/folder/result.json"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("missing.safetensors"), std::string::npos) << r.output;
}

TEST_F(ReliabilityCli, BatchLargerThanTheDataSetIsReportedAsItIs) {
  Result r = run(simclr("run", 1, {}, 100), t / "big.log");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("1 step of 64 images"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("steps of 100 images"), std::string::npos) << r.output;
  // finetune said "1 steps, batch 100".
  Result ft = run({"finetune", "--mode", "slf", "--ckpt", t / "run/last.safetensors", "--data", t / "data",
                   "--dataset", "mnist", "--size", "8", "--out", t / "ft", "--epochs", "1", "--batch-size", "100",
                   "--eval-steps", "0", "--attack-steps", "0", "--test-limit", "8", "--workers", "0",
                   "--log-every", "0"},
                  t / "ft.log");
  EXPECT_EQ(ft.code, 0) << ft.output;
  EXPECT_NE(ft.output.find("1 step of 64 images (--batch-size 100 is larger"), std::string::npos) << ft.output;
}

TEST_F(ReliabilityCli, DamagedPngAndEmptyClassFolderAreRefused) {
  // A valid PNG from `advcl data show --out`, then one CRC byte flipped.
  data::testing::make_dirs(t / "folder/cat");
  data::testing::make_dirs(t / "folder/dog");
  Result grid = run({"data", "show", "--data", t / "data", "--dataset", "mnist", "--count", "4", "--out",
                     t / "folder/cat/a.png"},
                    t / "grid.log");
  ASSERT_EQ(grid.code, 0) << grid.output;
  fs::copy_file(t / "folder/cat/a.png", t / "folder/dog/b.png", fs::copy_options::none);
  auto bytes = read_file(t / "folder/dog/b.png");
  bytes[8 + 4 + 4 + 13] ^= 0x01;  // IHDR's CRC
  data::testing::write_file(t / "folder/dog/b.png", bytes);
  Result crc = run({"data", "show", "--data", t / "folder", "--dataset", "folder", "--size", "8"}, t / "crc.log");
  EXPECT_EQ(crc.code, 1) << crc.output;
  EXPECT_NE(crc.output.find("b.png: damaged PNG"), std::string::npos) << crc.output;

  fs::remove(t / "folder/dog/b.png");
  Result empty = run({"data", "show", "--data", t / "folder", "--dataset", "folder", "--size", "8"}, t / "empty.log");
  EXPECT_EQ(empty.code, 1) << empty.output;
  EXPECT_NE(empty.output.find("'dog'"), std::string::npos) << empty.output;
  EXPECT_NE(empty.output.find("hold no"), std::string::npos) << empty.output;
}

// --- divergence: finite checkpoints only, the op named ----------------------

// Rewrites a checkpoint with `name` set to `value` everywhere (metadata kept):
// a state from which the next steps diverge, itself finite.
void set_constant(const std::string& path, const std::string& name, float value) {
  SafetensorsFile f = load_safetensors(path);
  Tensor t = f.tensors.at(name).clone();
  t.fill_(value);
  f.tensors[name] = t;
  save_safetensors(path, {f.tensors.begin(), f.tensors.end()}, f.metadata);
}

// Whether every tensor of a safetensors file is finite.
bool file_is_finite(const std::string& path) {
  for (auto& [name, t] : load_safetensors(path).tensors)
    if (is_floating(t.dtype()))
      for (double v : t.to(DType::Float64).to_vector<double>())
        if (!std::isfinite(v)) return false;
  return true;
}

TEST_F(ReliabilityCli, DivergedStateNeverReplacesTheLastFiniteCheckpoint) {
  ASSERT_EQ(run(simclr("run", 3, {"--stop-epoch", "1"}), t / "first.log").code, 0);
  // conv1's outputs near 1e20: batch norm's variance overflows float32, so
  // bn1.running_var becomes inf while the normalised values, and the loss,
  // stay finite: only a check of the state itself sees it.
  set_constant(t / "run/last.safetensors", "conv1.weight", 1e20f);
  const auto kept = read_file(t / "run/last.safetensors");
  Result r = run(simclr("run", 3), t / "diverge.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("running_var"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("became non-finite (inf or NaN)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the last good checkpoint is " + (t / "run/last.safetensors") + " (kept unchanged)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--detect-anomaly"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(t / "run/last.safetensors"), kept) << "a finite checkpoint must not be replaced";
  EXPECT_TRUE(file_is_finite(t / "run/last.safetensors"));
  EXPECT_TRUE(temporaries(t / "run").empty());
}

TEST_F(ReliabilityCli, DetectAnomalyNamesTheOpThatFirstMadeInfOrNan) {
  ASSERT_EQ(run(simclr("run", 3, {"--stop-epoch", "1"}), t / "first.log").code, 0);
  // bn1's scale near the float32 maximum: its output overflows to inf.
  set_constant(t / "run/last.safetensors", "bn1.weight", 3e38f);
  const auto kept = read_file(t / "run/last.safetensors");
  Result r = run(simclr("run", 3, {"--detect-anomaly"}), t / "anomaly.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("anomaly: op 'batch_norm"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at epoch 2 step 1"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(t / "run/last.safetensors"), kept);
}

// --- resume: the same run or none --------------------------------------------

TEST_F(ReliabilityCli, ResumingWithOtherOptionsIsRefusedNamingEach) {
  ASSERT_EQ(run(simclr("run", 2, {"--stop-epoch", "1"}), t / "first.log").code, 0);
  const auto ckpt = read_file(t / "run/last.safetensors");
  const std::string run_json = text_of(t / "run/run.json");
  Result r = run(simclr("run", 2, {"--learning_rate", "0.1", "--seed", "3"}), t / "other.log");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot resume with different options (2)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--learning_rate: '0.5' in the checkpoint, '0.1' now"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--seed: '0' in the checkpoint, '3' now"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("resuming from"), std::string::npos) << r.output;
  Result epochs = run(simclr("run", 3), t / "epochs.log");
  EXPECT_EQ(epochs.code, 1) << epochs.output;
  EXPECT_NE(epochs.output.find("--epoch: '2' in the checkpoint, '3' now"), std::string::npos) << epochs.output;
  Result batch = run(simclr("run", 2, {}, 8), t / "batch.log");
  EXPECT_EQ(batch.code, 1) << batch.output;
  EXPECT_NE(batch.output.find("--batch-size: '16' in the checkpoint, '8' now"), std::string::npos) << batch.output;
  EXPECT_EQ(text_of(t / "run/run.json"), run_json) << "a refused resume must not touch run.json";
  EXPECT_EQ(read_file(t / "run/last.safetensors"), ckpt);
  // What may change (docs/reliability.md) does not stop a resume.
  Result ok = run(simclr("run", 2, {"--save-steps", "3", "--device", "cpu", "--precision", "fp32"}), t / "ok.log");
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("resuming from"), std::string::npos) << ok.output;
  // --no-resume starts afresh with any options.
  Result fresh = run(simclr("run", 1, {"--no-resume", "--learning_rate", "0.1"}), t / "fresh.log");
  EXPECT_EQ(fresh.code, 0) << fresh.output;
  EXPECT_EQ(fresh.output.find("resuming from"), std::string::npos) << fresh.output;
}

TEST_F(ReliabilityCli, PartialOptimizerStateIsRefused) {
  ASSERT_EQ(run(simclr("run", 2, {"--stop-epoch", "1"}), t / "first.log").code, 0);
  SafetensorsFile f = load_safetensors(t / "run/last.safetensors");
  f.tensors.erase("optim.momentum.conv1.weight");
  save_safetensors(t / "run/last.safetensors", {f.tensors.begin(), f.tensors.end()}, f.metadata);
  const auto one_lost = read_file(t / "run/last.safetensors");
  Result one = run(simclr("run", 2), t / "one.log");
  EXPECT_EQ(one.code, 1) << one.output;
  EXPECT_NE(one.output.find("optimizer state is incomplete"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("conv1.weight"), std::string::npos) << one.output;
  EXPECT_EQ(read_file(t / "run/last.safetensors"), one_lost);
  for (auto it = f.tensors.begin(); it != f.tensors.end();)
    it = it->first.rfind("optim.momentum.", 0) == 0 ? f.tensors.erase(it) : std::next(it);
  save_safetensors(t / "run/last.safetensors", {f.tensors.begin(), f.tensors.end()}, f.metadata);
  Result all = run(simclr("run", 2), t / "all.log");
  EXPECT_EQ(all.code, 1) << all.output;
  EXPECT_NE(all.output.find("optimizer state is incomplete"), std::string::npos) << all.output;
}

// --- options: one set of checks, before any work ----------------------------

TEST_F(ReliabilityCli, BadOptionValuesAreRefusedBeforeAnyWork) {
  const std::string data = t / "data", out = t / "out";
  std::vector<std::string> base{"--data", data, "--dataset", "mnist", "--size", "8", "--out", out, "--workers", "0"};
  auto with = [&](const std::string& cmd, std::vector<std::string> extra) {
    std::vector<std::string> a{cmd};
    a.insert(a.end(), base.begin(), base.end());
    if (cmd == "pretrain") a.insert(a.end(), {"--labels", t / "labels.safetensors"});
    if (cmd == "finetune") a.insert(a.end(), {"--mode", "slf", "--ckpt", t / "pre.safetensors"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {with("simclr", {"--epoch", "0"}), "--epoch must be at least 1, got 0"},
      {with("pretrain", {"--epoch", "-3"}), "--epoch must be at least 1, got -3"},
      {with("simclr", {"--learning_rate", "nan"}), "--learning_rate must be a finite number, got nan"},
      {with("pretrain", {"--learning_rate", "inf"}), "--learning_rate must be a finite number, got inf"},
      {with("pretrain", {"--epsilon", "-8"}), "--epsilon must be >= 0, got -8"},
      {with("simclr", {"--width", "0"}), "--width must be at least 1, got 0"},
      {with("simclr", {"--momentum", "1.5"}), "--momentum must be in [0, 1), got 1.5"},
      {with("pretrain", {"--threads", "-2"}), "--threads must be >= 0, got -2"},
      {with("simclr", {"--save-steps", "-1"}), "--save-steps must be >= 0, got -1"},
      {with("simclr", {"--stop-epoch", "-1"}), "--stop-epoch must be >= 0, got -1"},
      {with("finetune", {"--beta", "-6"}), "--beta must be >= 0, got -6"},
      {with("finetune", {"--gamma", "-1"}), "--gamma must be >= 0, got -1"},
      {with("finetune", {"--lr", "nan"}), "--lr must be a finite number, got nan"},
      {with("simclr", {"--resume", "--no-resume"}), "--resume and --no-resume exclude each other"},
      {{"eval", "--ckpt", t / "ft.safetensors", "--data", data, "--dataset", "mnist", "--eps", "-1"},
       "--eps must be >= 0, got -1"},
      {{"pseudo-labels", "--import", t / "l.pkl", "--out", t / "l.safetensors", "--restarts", "0"},
       "--restarts must be at least 1, got 0"},
  };
  int i = 0;
  for (const auto& [args, words] : cases) {
    Result r = run(args, t / ("bad" + std::to_string(i++) + ".log"));
    EXPECT_EQ(r.code, 1) << args[0] << ": " << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "refused before any work: " << r.output;
  }
  // --resume where there is nothing to resume: an error, not a silent fresh start.
  Result none = run(simclr("empty", 1, {"--resume"}), t / "none.log");
  EXPECT_EQ(none.code, 1) << none.output;
  EXPECT_NE(none.output.find("--resume: " + (t / "empty") + " holds no checkpoint"), std::string::npos) << none.output;
  EXPECT_FALSE(fs::exists(t / "empty/run.json"));
}

// --- finetune never writes over its input ------------------------------------

TEST_F(ReliabilityCli, FinetuneRefusesTheFolderOfItsCheckpointAndOtherStagesRuns) {
  ASSERT_EQ(run(simclr("run", 1), t / "simclr.log").code, 0);
  const auto ckpt = read_file(t / "run/last.safetensors");
  const std::string run_json = text_of(t / "run/run.json");
  auto finetune = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> a{"finetune", "--mode", "slf", "--ckpt", t / "run/last.safetensors", "--data",
                               t / "data", "--dataset", "mnist", "--size", "8", "--out", out, "--epochs", "1",
                               "--eval-steps", "0", "--attack-steps", "0", "--test-limit", "8", "--workers", "0"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  for (bool no_resume : {false, true}) {
    Result r = run(finetune(t / "run", no_resume ? std::vector<std::string>{"--no-resume"} : std::vector<std::string>{}),
                   t / "own.log");
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("is the folder of --ckpt"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(t / "run/last.safetensors"), ckpt);
    EXPECT_EQ(text_of(t / "run/run.json"), run_json);
  }
  ASSERT_EQ(run(simclr("other", 1), t / "other.log").code, 0);
  Result other = run(finetune(t / "other", {}), t / "stage.log");
  EXPECT_EQ(other.code, 1) << other.output;
  EXPECT_NE(other.output.find("this folder holds a simclr run"), std::string::npos) << other.output;
  EXPECT_EQ(other.output.find("missing tensors"), std::string::npos) << other.output;
}

// --- checkpoint values on load -------------------------------------------------

TEST_F(ReliabilityCli, NonFiniteOrRetypedWeightsAreRefusedOnLoad) {
  ASSERT_EQ(run(simclr("run", 1), t / "simclr.log").code, 0);
  std::vector<std::string> ft{"finetune", "--mode", "slf", "--ckpt", t / "run/last.safetensors", "--data",
                              t / "data", "--dataset", "mnist", "--size", "8", "--out", t / "ft", "--epochs", "1",
                              "--eval-steps", "0", "--attack-steps", "0", "--test-limit", "8", "--workers", "0"};
  ASSERT_EQ(run(ft, t / "ft.log").code, 0);
  const std::vector<std::string> eval{"eval", "--ckpt", t / "ft/last.safetensors", "--data", t / "data",
                                      "--dataset", "mnist", "--size", "8", "--steps", "1", "--workers", "0"};
  ASSERT_EQ(run(eval, t / "eval.log").code, 0);
  SafetensorsFile f = load_safetensors(t / "ft/last.safetensors");
  const Tensor w = f.tensors.at("conv1.weight");
  std::vector<float> v = w.to_vector<float>();
  v[0] = std::nanf("");
  f.tensors["conv1.weight"] = Tensor::from_vector<float>(v, w.shape());
  save_safetensors(t / "ft/last.safetensors", {f.tensors.begin(), f.tensors.end()}, f.metadata);
  Result nan = run(eval, t / "nan.log");
  EXPECT_EQ(nan.code, 1) << nan.output;
  EXPECT_NE(nan.output.find("conv1.weight holds non-finite values"), std::string::npos) << nan.output;
  f.tensors["conv1.weight"] = w.to(DType::Float64);
  save_safetensors(t / "ft/last.safetensors", {f.tensors.begin(), f.tensors.end()}, f.metadata);
  Result f64 = run(eval, t / "f64.log");
  EXPECT_EQ(f64.code, 1) << f64.output;
  EXPECT_NE(f64.output.find("conv1.weight (float64 in the file, the model's conv1.weight is float32"),
            std::string::npos)
      << f64.output;
  // A diverged pretrained encoder is refused by finetune as well.
  set_constant(t / "run/last.safetensors", "layer1.0.conv1.weight", INFINITY);
  ft[12] = t / "ft2";
  Result pre = run(ft, t / "ft2.log");
  EXPECT_EQ(pre.code, 1) << pre.output;
  EXPECT_NE(pre.output.find("layer1.0.conv1.weight holds non-finite values"), std::string::npos) << pre.output;
}

}  // namespace
