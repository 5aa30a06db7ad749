// GoogleTest entry point. Prints a closing line "N passed, N failed, N skipped"
// so that CI and people see at a glance how many tests skipped (GPU tests skip
// themselves on machines without a GPU).
#include <gtest/gtest.h>

#include <cstdio>

namespace {
class Summary : public testing::EmptyTestEventListener {
  void OnTestProgramEnd(const testing::UnitTest& u) override {
    int skipped = u.skipped_test_count();
    std::printf("\ntests: %d passed, %d failed, %d skipped\n", u.successful_test_count(),
                u.failed_test_count(), skipped);
    std::fflush(stdout);
  }
};
}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new Summary);
  return RUN_ALL_TESTS();
}
