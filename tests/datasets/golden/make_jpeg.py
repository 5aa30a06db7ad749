#!/usr/bin/env python3
"""Writes tiny_gradient.jpg, a 16x12 (w x h) RGB JPEG with a smooth gradient,
for tests/datasets/image_folder_test.cpp: pixel (x, y) is
(16x, 20y, 128) before compression. Written with PIL (quality 95) rather
than by the test, so the test decodes a JPEG from a real encoder.
Needs pillow and numpy. Run from this folder.
"""
import numpy as np
from PIL import Image


def main():
    yy, xx = np.meshgrid(np.arange(12), np.arange(16), indexing="ij")
    rgb = np.stack([16 * xx, 20 * yy, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save("tiny_gradient.jpg", quality=95)


if __name__ == "__main__":
    main()
