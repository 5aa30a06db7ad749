// The one translation unit that compiles stb_image_write (Debian's
// libstb-dev, header-only): the image grid writes PNGs with it, and the tests
// use it to make image files. Defining the implementation anywhere else
// would duplicate its symbols in any binary that links libadvcl.a.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
