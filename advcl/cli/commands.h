// The `advcl` subcommands. Each takes the arguments after its name and
// returns the process exit code; errors are thrown as advcl::Error.
#pragma once

namespace advcl::cli {

int cmd_pretrain(int argc, char** argv);       // AdvCL pretraining
int cmd_simclr(int argc, char** argv);         // standard SimCLR, the encoder for pseudo-labels
int cmd_pseudo_labels(int argc, char** argv);  // features + k-means, or import of the reference's file
int cmd_features(int argc, char** argv);       // pooled encoder features of a dataset, as safetensors
int cmd_finetune(int argc, char** argv);       // SLF / ALF / AFF finetuning with SA and RA per epoch
int cmd_eval(int argc, char** argv);           // SA and RA of a finetuned checkpoint (PGD or AutoAttack)
int cmd_data(int argc, char** argv);           // `data show`: a dataset's summary, class counts, image grid
int cmd_export(int argc, char** argv);         // the encoder with one BN set, ours or the reference's names

}  // namespace advcl::cli
