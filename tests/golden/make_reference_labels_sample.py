#!/usr/bin/env python3
"""A small file in the format of the reference's pseudo-label file
`imagenet_clPretrain_pseudo_labels.pkl`: a pickle (protocol 3) of a dict of
ten 1-D int32 numpy arrays pseudo_train_{2,10,50,100,500} and
pseudo_test_{...}. Here with 40 training and 8 test labels, made by numpy's
own pickling, so that the importer is tested on genuine bytes.

    python3 tests/golden/make_reference_labels_sample.py

writes tests/golden/reference_pseudo_labels_sample.pkl (read by
tests/advcl/pipeline_test.cpp). Needs numpy; the tests do not.
"""
import os
import pickle

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_pseudo_labels_sample.pkl")
rng = np.random.default_rng(0)
d = {}
for k in (2, 10, 50, 100, 500):
    d[f"pseudo_train_{k}"] = (np.arange(40) * 7 % k).astype(np.int32)
    d[f"pseudo_test_{k}"] = rng.integers(0, k, 8).astype(np.int32)
with open(OUT, "wb") as f:
    pickle.dump(d, f, protocol=3)
print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")
