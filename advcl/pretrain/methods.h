// The built-in pretraining methods, each declared in its own step file.
#pragma once
#include "advcl/pretrain/method.h"

namespace advcl::method {

PretrainMethod advcl_method();  // AdvCL (advcl/pretrain/advcl_step.cpp)
PretrainMethod acl_method();    // ACL, dual stream (advcl/pretrain/acl_step.cpp)

}  // namespace advcl::method
