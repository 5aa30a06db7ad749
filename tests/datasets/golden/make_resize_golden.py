#!/usr/bin/env python3
"""Writes what PIL's Image.resize(..., BILINEAR) (the resize torchvision's
Resize applies to PIL images) makes of two test images, for
tests/datasets/image_fit_test.cpp to compare our resize against (within one
grey level: PIL rounds after each pass in fixed point, we round once).

  pil_resize_96_to_32.bin: 3x96x96 RGB -> 3x32x32, CHW bytes (STL-10 case)
  pil_resize_28_to_32.bin: 1x28x28 grey -> 1x32x32 (MNIST case)

Pixel (c, y, x) of a test image is (37x + 91y + 53c + 7xy) % 256.
Needs pillow and numpy. Run from this folder.
"""
import numpy as np
from PIL import Image


def test_image(c, h, w):
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((37 * xx + 91 * yy + 53 * cc + 7 * xx * yy) % 256).astype(np.uint8)


def main():
    rgb = test_image(3, 96, 96)
    out = Image.fromarray(rgb.transpose(1, 2, 0), "RGB").resize((32, 32), Image.BILINEAR)
    np.asarray(out).transpose(2, 0, 1).tofile("pil_resize_96_to_32.bin")
    grey = test_image(1, 28, 28)[0]
    out = Image.fromarray(grey, "L").resize((32, 32), Image.BILINEAR)
    np.asarray(out).tofile("pil_resize_28_to_32.bin")


if __name__ == "__main__":
    main()
