// Writing a file so that a reader only ever sees the old version or the
// complete new one: every file advcl writes (checkpoints, run.json,
// results.json, exported weights, PNG grids) goes through here.
//
//   AtomicFile f(path);      // creates path.tmp.<pid>.<n>, unique to this writer
//   f.write(p, n) ...        // every write checked (short writes retried, EINTR too)
//   f.commit();              // fsync, close, rename over path, fsync the folder
//
// Any failure (a full disk, a file-size limit, a folder made read-only, a
// close that reports a deferred write error) throws an advcl::Error naming
// `path` and the step that failed; the temporary is removed and `path` keeps
// its previous contents. Without commit(), the destructor removes the
// temporary: an exception between the writes leaves nothing behind.
//
// The temporary's name carries the process id and a per-process counter, so
// two writers of one file (two runs on one folder, two threads) never share a
// temporary; O_EXCL makes a collision with a stale file an error-free retry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace advcl {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Makes the bytes durable and renames them over the path. Call once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  [[noreturn]] void fail_step(const char* step, int err);
  void discard();

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `bytes` into `path`, atomically (as above).
void write_file_atomically(const std::string& path, const std::string& bytes);

// Throws, naming `what` and `path`, unless a file can be created in path's
// folder: lets a command refuse an unwritable output before its work, not
// after. Creates and removes a temporary; leaves `path` untouched.
void check_writable(const std::string& path, const std::string& what);

// Appends `text` to `path` (created if missing) and fsyncs it. On a failed or
// short write the file is cut back to its previous length, so a log never
// ends in half a line; throws naming `path`.
void append_durably(const std::string& path, const std::string& text);

}  // namespace advcl
