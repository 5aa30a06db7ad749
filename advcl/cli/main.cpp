// The `advcl` command line: one subcommand per stage of the paper's pipeline.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "advcl/cli/commands.h"
#include "advcl/run/train_loop.h"
#include "nn/parallel/communicator.h"
#include "engine/common.h"
#include "engine/cpu_features.h"
#include "engine/storage.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: advcl <command> [options]\n"
               "\n"
               "The AdvCL pipeline (NeurIPS 2021), stage by stage:\n"
               "  simclr         standard SimCLR pretraining (the encoder for pseudo-labels)\n"
               "  pseudo-labels  k-means of an encoder's features, or import of the reference's file\n"
               "  features       the pooled features of every image from an encoder, as safetensors\n"
               "  pretrain       AdvCL pretraining\n"
               "  finetune       SLF, ALF or AFF finetuning, with SA and RA on the test split\n"
               "  eval           SA and RA of a finetuned checkpoint (PGD-20 or AutoAttack)\n"
               "  export         an encoder with one BN set, in our or the reference finetuning's names\n"
               "  data           look at a dataset: summary, per-class counts, a PNG grid\n"
               "  version        print the build configuration\n"
               "\n"
               "Run `advcl <command> --help` for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) must be a write error with a message, which
  // the atomic writers turn into "previous file kept", not a silent kill.
  std::signal(SIGXFSZ, SIG_IGN);
  // Under mpirun/srun every process is one rank of a data-parallel job
  // (docs/distributed.md); otherwise this is a group of one.
  advcl::dist::init_from_env(&argc, &argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "version") {
      std::printf("advcl (CUDA backend: %s)\n", advcl::cuda_built() ? "built" : "not built");
      // What --precision bf16 would run on here (engine/cpu_features.h).
      const advcl::cpu::Bf16Support& bf16 = advcl::cpu::bf16_support();
      std::printf("oneDNN ISA: %s\n", bf16.onednn_isa.c_str());
      std::printf("CPU bf16: avx512_bf16 %s, amx_bf16 %s; --precision bf16 %s\n", bf16.avx512_bf16 ? "yes" : "no",
                  bf16.amx_bf16 ? "yes" : "no", bf16.native() ? "available" : ("refused: " + bf16.missing()).c_str());
      return 0;
    }
    if (cmd == "pretrain") return advcl::cli::cmd_pretrain(argc - 1, argv + 1);
    if (cmd == "simclr") return advcl::cli::cmd_simclr(argc - 1, argv + 1);
    if (cmd == "pseudo-labels") return advcl::cli::cmd_pseudo_labels(argc - 1, argv + 1);
    if (cmd == "features") return advcl::cli::cmd_features(argc - 1, argv + 1);
    if (cmd == "finetune") return advcl::cli::cmd_finetune(argc - 1, argv + 1);
    if (cmd == "eval") return advcl::cli::cmd_eval(argc - 1, argv + 1);
    if (cmd == "data") return advcl::cli::cmd_data(argc - 1, argv + 1);
    if (cmd == "export") return advcl::cli::cmd_export(argc - 1, argv + 1);
  } catch (const advcl::cli::Interrupted& e) {
    std::fprintf(stderr, "advcl %s: %s\n", cmd.c_str(), e.what());
    // As a shell reports a process ended by the signal: 130 after SIGINT
    // (Ctrl-C), 143 after SIGTERM (kill, a batch system's time limit).
    return 128 + (e.signal > 0 ? e.signal : SIGINT);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "advcl %s: error: %s\n", cmd.c_str(), e.what());
    // One rank's error must end the whole job, not leave the others waiting.
    if (advcl::dist::world().distributed()) advcl::dist::abort_job(e.what());
    return 1;
  }
  std::fprintf(stderr, "advcl: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}
