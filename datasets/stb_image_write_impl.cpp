// The one translation unit that compiles stb_image_write (Debian's
// libstb-dev, header-only): the image grid writes PNGs with it, and the tests
// use it to make image files. Defining the implementation anywhere else
// would duplicate its symbols in any binary that links libadvcl.a.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "datasets/stb_write.h"
