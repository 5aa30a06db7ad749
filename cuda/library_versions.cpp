#include "cuda/library_versions.h"

namespace advcl::cuda {

std::string LibraryVersion::str() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

LibraryVersion decode_library_version(int code) {
  if (code < 10000) return {code / 1000, code % 1000 / 100, code % 100};
  return {code / 10000, code % 10000 / 100, code % 100};
}

VersionCheck check_library_version(const std::string& library, int built, int installed, const std::string& install) {
  LibraryVersion b = decode_library_version(built), i = decode_library_version(installed);
  const std::string want = library + " " + std::to_string(b.major) + ".x, " + std::to_string(b.major) + "." +
                           std::to_string(b.minor) + " or newer";
  const std::string found = library + " " + i.str() + " is installed but advcl was built with " + b.str();
  if (i.major != b.major)
    return {VersionVerdict::Incompatible,
            found + ": another major version is another ABI. Install " + want + " (" + install +
                "), or rebuild advcl against the installed " + library + " (make CUDA=1)"};
  if (i.minor < b.minor)
    return {VersionVerdict::Older, found + ", which may lack what advcl uses. Install " + want + " (" + install +
                                       "), or rebuild advcl against the installed " + library + " (make CUDA=1)"};
  return {};
}

}  // namespace advcl::cuda
