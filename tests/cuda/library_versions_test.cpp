// The start-up comparison of cuDNN and NCCL with the versions the build used
// (cuda/library_versions.h); cuda/runtime.cu applies it on a GPU machine.
#include <gtest/gtest.h>

#include "cuda/library_versions.h"

using namespace advcl;
using cuda::VersionVerdict;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(LibraryVersions, DecodesBothEncodings) {
  // cuDNN 9 and NCCL 2.9+: major * 10000 + minor * 100 + patch.
  EXPECT_EQ(cuda::decode_library_version(91900).str(), "9.19.0");
  EXPECT_EQ(cuda::decode_library_version(22809).str(), "2.28.9");
  // cuDNN 8 and NCCL before 2.9: major * 1000 + minor * 100 + patch.
  EXPECT_EQ(cuda::decode_library_version(8907).str(), "8.9.7");
  EXPECT_EQ(cuda::decode_library_version(2708).str(), "2.7.8");
}

TEST(LibraryVersions, SameMajorAndNoOlderMinorIsFine) {
  EXPECT_EQ(cuda::check_library_version("cuDNN", 91900, 91900, "x").verdict, VersionVerdict::Ok);
  EXPECT_EQ(cuda::check_library_version("cuDNN", 91900, 91902, "x").verdict, VersionVerdict::Ok);  // newer patch
  EXPECT_EQ(cuda::check_library_version("cuDNN", 91300, 91900, "x").verdict, VersionVerdict::Ok);  // newer minor
  EXPECT_EQ(cuda::check_library_version("NCCL", 22809, 22903, "x").verdict, VersionVerdict::Ok);
  EXPECT_TRUE(cuda::check_library_version("NCCL", 22809, 22809, "x").message.empty());
}

TEST(LibraryVersions, OlderMinorIsAWarningThatSaysWhatToInstall) {
  cuda::VersionCheck c = cuda::check_library_version("cuDNN", 91900, 91301, "pip install nvidia-cudnn-cu13");
  EXPECT_EQ(c.verdict, VersionVerdict::Older);
  EXPECT_TRUE(contains(c.message, "cuDNN 9.13.1 is installed")) << c.message;
  EXPECT_TRUE(contains(c.message, "built with 9.19.0")) << c.message;
  EXPECT_TRUE(contains(c.message, "9.19 or newer")) << c.message;
  EXPECT_TRUE(contains(c.message, "pip install nvidia-cudnn-cu13")) << c.message;
  // An older patch of the same minor version is the same API.
  EXPECT_EQ(cuda::check_library_version("NCCL", 22809, 22801, "x").verdict, VersionVerdict::Ok);
}

TEST(LibraryVersions, AnotherMajorVersionIsAnError) {
  cuda::VersionCheck older = cuda::check_library_version("cuDNN", 91900, 8907, "the cuDNN 9 package");
  EXPECT_EQ(older.verdict, VersionVerdict::Incompatible);
  EXPECT_TRUE(contains(older.message, "cuDNN 8.9.7 is installed")) << older.message;
  EXPECT_TRUE(contains(older.message, "cuDNN 9.x")) << older.message;
  EXPECT_TRUE(contains(older.message, "the cuDNN 9 package")) << older.message;
  // A newer major version is no better: another ABI.
  EXPECT_EQ(cuda::check_library_version("cuDNN", 91900, 100000, "x").verdict, VersionVerdict::Incompatible);
}
