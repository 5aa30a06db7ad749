#include "engine/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/common.h"

namespace advcl {

namespace {

std::atomic<uint64_t> g_counter{0};

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// After a rename, the directory entry must reach the disk for the new file to
// survive a power cut. Best effort: some filesystems refuse fsync on a folder,
// and the data itself is already durable.
void sync_folder(const std::string& path) {
  int fd = ::open(parent_of(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Writes all n bytes (retrying short writes and EINTR); returns 0 or errno.
int write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return ENOSPC;  // no progress: treat as a full disk rather than loop
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// Creates a fresh temporary next to `path`; returns its fd (or -1 with errno set).
int create_temp(const std::string& path, std::string* tmp) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    *tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_counter.fetch_add(1));
    int fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("cannot write a file with an empty name");
  fd_ = create_temp(path_, &tmp_);
  if (fd_ < 0) {
    int err = errno;
    fail("cannot write ", path_, ": cannot create the temporary ", tmp_, ": ", std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::fail_step(const char* step, int err) {
  discard();
  committed_ = true;  // nothing left to clean up
  fail("cannot write ", path_, ": ", step, " failed: ", std::strerror(err),
       " (the previous file, if there was one, is unchanged)");
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) fail("cannot write ", path_, ": the file was already committed or abandoned");
  if (int err = write_all(fd_, data, n)) fail_step("write", err);
}

void AtomicFile::commit() {
  if (fd_ < 0) fail("cannot write ", path_, ": the file was already committed or abandoned");
  if (::fsync(fd_) != 0) fail_step("fsync", errno);
  // close can report a deferred write error (NFS, some FUSE filesystems): a
  // file we cannot vouch for must not replace a good one.
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_step("close", errno);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail_step("rename", errno);
  committed_ = true;
  sync_folder(path_);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

void check_writable(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail(what, ": '", path, "' is a folder; give the name of the file to write");
  std::string tmp;
  int fd = create_temp(path, &tmp);
  if (fd < 0) {
    int err = errno;
    fail(what, ": cannot write '", path, "': ", std::strerror(err), " (checked before any work is done)");
  }
  ::close(fd);
  ::unlink(tmp.c_str());
}

void append_durably(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    fail("cannot append to ", path, ": ", std::strerror(err));
  }
  struct stat st {};
  off_t before = ::fstat(fd, &st) == 0 ? st.st_size : -1;
  int err = write_all(fd, text.data(), text.size());
  if (!err && ::fsync(fd) != 0) err = errno;
  if (err) {
    if (before >= 0 && ::ftruncate(fd, before) != 0) {
      // The log may now end in a partial line; the error below still stops the run.
    }
    ::close(fd);
    fail("cannot append to ", path, ": ", std::strerror(err), " (the lines written before are kept)");
  }
  if (::close(fd) != 0) {
    err = errno;
    fail("cannot append to ", path, ": close failed: ", std::strerror(err));
  }
}

}  // namespace advcl
