// stb_image_write (Debian's libstb-dev, header-only) with its own warnings
// silenced. datasets/stb_image_write_impl.cpp compiles the implementation;
// everything else includes this header for the declarations.
#pragma once
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
