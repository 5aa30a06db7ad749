// What the pretraining command tests share: a tiny CIFAR-10-format dataset
// on disk, and running a command's entry point with an argument list.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "tests/datasets/cifar_test_util.h"

namespace advcl::pretrain_test {

// 5 training batches of 8 images (40 in all) and a test batch, CIFAR-10 binary.
inline void write_tiny_cifar(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (int b = 1; b <= 5; ++b) {
    std::vector<int> labels;
    for (int k = 0; k < 8; ++k) labels.push_back((b * 8 + k) % 10);
    data::testing::write_file(dir + "/data_batch_" + std::to_string(b) + ".bin",
                              data::testing::cifar_binary(10, (b - 1) * 8, labels));
  }
  data::testing::write_file(dir + "/test_batch.bin", data::testing::cifar_binary(10, 100, {1, 2, 3, 4}));
}

// cmd(argv) with args[0] the command's name; returns its exit code.
inline int run(std::vector<std::string> args, int (*cmd)(int, char**)) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return cmd(static_cast<int>(argv.size()), argv.data());
}

}  // namespace advcl::pretrain_test
