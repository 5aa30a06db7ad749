// The `advcl` command line. Subcommands are added as the stages land.
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/storage.h"

namespace {
void usage(FILE* out) {
  std::fprintf(out,
               "usage: advcl <command> [options]\n"
               "\n"
               "commands:\n"
               "  version      print the build configuration\n"
               "\n"
               "Run `advcl <command> --help` for a command's options.\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "version") {
    std::printf("advcl (CUDA backend: %s)\n", advcl::cuda_built() ? "built" : "not built");
    return 0;
  }
  std::fprintf(stderr, "advcl: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}
