// The reference finetuning model's state-dict names for our single-set encoder.
//
// The reference (LijieFan/AdvCL) finetunes a plain ResNet-18 whose shortcut is
// an nn.Sequential (`layerN.M.shortcut.0` conv, `shortcut.1` BatchNorm2d) and
// whose BNs are plain BatchNorm2d (`bnK.weight`, ...). Our encoder names the
// shortcut `downsample.conv` / `downsample.bn`; everything else already
// matches. This is the C++ twin of nn/convert_reference_checkpoint.py's
// RENAMES, used by `advcl export --format reference-finetune`.
#pragma once
#include <string>

namespace advcl::cli {

// Our name -> the reference finetuning model's name. Throws advcl::Error for a
// multi-set BN name (`bn_list.`): that model has one set, so one must be chosen first.
std::string reference_finetune_name(const std::string& ours);

}  // namespace advcl::cli
