#include "advcl/run/export_names.h"

#include "engine/common.h"

namespace advcl::cli {

std::string reference_finetune_name(const std::string& ours) {
  if (ours.find("bn_list.") != std::string::npos)
    fail("reference_finetune_name: '", ours, "' belongs to a multi-set BN; export one BN set first");
  static const std::pair<const char*, const char*> kRenames[] = {{".downsample.conv.", ".shortcut.0."},
                                                                 {".downsample.bn.", ".shortcut.1."}};
  std::string name = ours;
  for (const auto& [from, to] : kRenames) {
    size_t at = name.find(from);
    if (at != std::string::npos) name.replace(at, std::string(from).size(), to);
  }
  return name;
}

}  // namespace advcl::cli
