#!/usr/bin/env python3
"""Writes the tiny golden CIFAR pickles that tests/datasets/cifar_pickle_test.cpp
reads, with Python's own pickle and numpy at protocol 2 (as the official files),
so the test proves the C++ unpickler reads what real Python writes.

Pixel j of image i is (7*i + 13*j) % 256, matching the C++ test's expectation.
Run from this folder: python3 make_cifar_pickles.py
"""
import pickle

import numpy as np


def images(n):
    i = np.arange(n).reshape(n, 1)
    j = np.arange(3072).reshape(1, 3072)
    return ((7 * i + 13 * j) % 256).astype(np.uint8)


def main():
    cifar10 = {
        b"batch_label": b"tiny golden batch",
        b"labels": [3, 9, 0],
        b"data": images(3),
        b"filenames": [b"a.png", b"b.png", b"c.png"],
    }
    with open("tiny_cifar10_batch.pkl", "wb") as f:
        pickle.dump(cifar10, f, protocol=2)

    cifar100 = {
        b"filenames": [b"x.png", b"y.png"],
        b"batch_label": b"tiny golden train",
        b"fine_labels": [99, 42],
        b"coarse_labels": [19, 7],
        b"data": images(2),
    }
    with open("tiny_cifar100_train.pkl", "wb") as f:
        pickle.dump(cifar100, f, protocol=2)


if __name__ == "__main__":
    main()
