// Everything a user of the engine needs: tensors, autograd and every op.
#pragma once
#include "engine/autograd.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/conv2d.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/fft_highpass.h"
#include "engine/ops/linear.h"
#include "engine/ops/random.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "engine/rng.h"
#include "engine/tensor.h"
