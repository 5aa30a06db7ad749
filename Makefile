# advcl: one Makefile.
#   make               build the library, the `advcl` binary and the test binary
#   make test          build and run the whole GoogleTest suite
#   make sanitize      the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench         side-by-side timings against PyTorch (needs `pip install torch`)
#   make demo          the paper pipeline on Fashion-MNIST, on the CPU
# Options: CUDA=auto|0|1 (auto: use nvcc when found), NVCC=path, JOBS=n.
# Outputs go to build/cpu or build/cuda (build/sanitize for `make sanitize`).

# Build with every core unless -j was given.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc)
endif

# Install missing Debian packages before anything is detected below, so a
# bare machine builds the full configuration on the first `make`.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
  SETUP_STATUS := $(shell bash scripts/setup.sh 1>&2; echo $$?)
  ifneq ($(SETUP_STATUS),0)
    $(error scripts/setup.sh failed (exit $(SETUP_STATUS)): see the messages above)
  endif
endif

CUDA ?= auto
NVCC ?= $(shell command -v nvcc 2>/dev/null || ( test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc ))
ifeq ($(CUDA),auto)
  ifneq ($(NVCC),)
    CUDA := 1
  else
    CUDA := 0
  endif
endif
ifeq ($(CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but no nvcc found: install the CUDA toolkit or set NVCC=/path/to/nvcc)
  endif
endif

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
  VARIANT := sanitize
  CUDA := 0
else ifeq ($(CUDA),1)
  VARIANT := cuda
else
  VARIANT := cpu
endif
BUILD := build/$(VARIANT)

CXX ?= g++
CXXFLAGS := -std=c++17 -O3 -g -fopenmp -Wall -Wextra -Wno-unknown-pragmas -I. -DADVCL_CUDA=$(CUDA) -MMD -MP
LDLIBS := -ldnnl -lopenblas -lz -lpthread -fopenmp
ifeq ($(SANITIZE),1)
  CXXFLAGS := $(filter-out -O3,$(CXXFLAGS)) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS += -fsanitize=address,undefined
endif

# MPI (Open MPI from Debian) for data-parallel runs: used when mpicxx is found
# (MPI=auto), or forced with MPI=0 / MPI=1. Without it, nn/parallel/ builds for a
# single process.
MPI ?= auto
ifeq ($(MPI),auto)
  MPI := $(if $(shell command -v mpicxx 2>/dev/null),1,0)
endif
ifeq ($(MPI),1)
  CXXFLAGS += -DADVCL_MPI=1 $(shell mpicxx --showme:compile)
  LDLIBS += $(shell mpicxx --showme:link)
else
  CXXFLAGS += -DADVCL_MPI=0
endif

CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# Hopper (sm_90) and Ampere (sm_80) machine code, plus PTX for newer GPUs.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -std=c++17 -O3 -I. -DADVCL_CUDA=1 $(CUDA_ARCH) -Xcompiler -fopenmp,-Wall,-Wextra -MMD -MP
ifeq ($(CUDA),1)
  LDLIBS += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib \
            -lcudnn -lcublas -lcufft -lcudart
endif
# NCCL sums gradient buckets on the GPU (nn/parallel/nccl_all_reduce.cu): used in a
# CUDA build when the toolkit (or the system) has it; otherwise GPU buckets
# go through MPI on the host.
NCCL ?= auto
ifeq ($(NCCL),auto)
  NCCL := $(if $(and $(filter 1,$(CUDA)),$(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h)),1,0)
endif
CXXFLAGS += -DADVCL_NCCL=$(NCCL)
NVCCFLAGS += -DADVCL_NCCL=$(NCCL)
ifeq ($(NCCL),1)
  LDLIBS += -lnccl
endif

LIB_DIRS := engine engine/ops cuda nn nn/parallel datasets $(addprefix advcl/,step attacks pretrain finetune run cli)
LIB_CPP := $(filter-out advcl/cli/main.cpp,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cpp)))
LIB_CU := $(if $(filter 1,$(CUDA)),$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cu)))
TEST_CPP := $(shell find tests -path tests/mpi -prune -o -path tests/fuzz -prune -o -name "*.cpp" -print 2>/dev/null)

LIB_OBJ := $(LIB_CPP:%.cpp=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.cu.o)
TEST_OBJ := $(TEST_CPP:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libadvcl.a
BIN := $(BUILD)/bin/advcl
TEST_BIN := $(BUILD)/bin/advcl_tests
BENCH_BIN := $(BUILD)/bin/advcl_bench

.PHONY: all test sanitize bench demo clean info gpu-bundle
all: info $(LIB) $(BIN) $(TEST_BIN) $(BENCH_BIN)
	@echo "built: $(BIN) and $(TEST_BIN) ($(VARIANT), CUDA=$(CUDA))"

info:
	@echo "advcl build: variant=$(VARIANT) CUDA=$(CUDA) nvcc=$(if $(NVCC),$(NVCC),none) MPI=$(MPI) NCCL=$(NCCL) cxx=$(CXX)"

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# The random fills must equal the CPU generator's bit for bit: no fused
# multiply-adds there (the host compiler does not fuse `a + (b - a) * u`).
$(BUILD)/engine/ops/random.cu.o: NVCCFLAGS += -fmad=false

# stb_image_write (a third-party header, compiled in this one file) shifts
# negative values by design; keep UBSan's shift check away from it.
$(BUILD)/datasets/stb_image_write_impl.o: CXXFLAGS += -fno-sanitize=shift

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/advcl/cli/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

$(TEST_BIN): $(TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $(TEST_OBJ) $(LIB) -lgtest $(LDLIBS)

test: all
	bash scripts/check_includes.sh
	$(TEST_BIN)

sanitize:
	$(MAKE) SANITIZE=1 build/sanitize/bin/advcl_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/sanitize/bin/advcl_tests

bench: all $(BENCH_BIN)
	python3 bench/run.py --build $(BUILD)

$(BENCH_BIN): $(BUILD)/bench/engine_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

demo:
	@bash scripts/setup.sh --demo
	$(MAKE) all
	bash scripts/demo.sh $(BUILD)

# The CUDA build packed for a GPU machine without our Debian packages
# (scripts/gpu_check.sh runs it there; cuda/README.md).
gpu-bundle:
	bash scripts/gpu_bundle.sh

clean:
	rm -rf build .gpu

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/advcl/cli/main.d $(BUILD)/bench/engine_bench.d

# --- Multi-process tests (nn/parallel/) ---------------------------------------
# tests/mpi/*.cpp form a separate GoogleTest binary that only runs under an
# MPI launcher: each process is one rank (the main suite covers nn/parallel/ in a
# world of one, tests/nn/parallel/). `make test-mpi` runs it on 2 and on 3 ranks
# (3 gives unequal shards) and checks that a stuck or dead rank ends the job.
ifeq ($(MPI),1)
MPI_TEST_CPP := $(wildcard tests/mpi/*.cpp)
MPI_TEST_OBJ := $(MPI_TEST_CPP:%.cpp=$(BUILD)/%.o)
MPI_TEST_BIN := $(BUILD)/bin/advcl_dist_tests
# One OpenMP thread per rank: the ranks already share the cores.
MPIRUN := mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1

all: $(MPI_TEST_BIN)

$(MPI_TEST_BIN): $(MPI_TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $(MPI_TEST_OBJ) $(LIB) -lgtest $(LDLIBS)

.PHONY: test-mpi
test-mpi: $(MPI_TEST_BIN)
	$(MPIRUN) -np 2 $(MPI_TEST_BIN)
	$(MPIRUN) -np 3 $(MPI_TEST_BIN)
	bash tests/mpi/dead_rank.sh $(MPI_TEST_BIN) 2

-include $(MPI_TEST_OBJ:.o=.d)
else
.PHONY: test-mpi
test-mpi:
	@echo "test-mpi: this build has no MPI (install libopenmpi-dev, or MPI=1)"; exit 1
endif

# --- ResNet-18 training-step bench (issue 5) ----------------------------------
# One whole step (forward, cross-entropy, backward, SGD) against PyTorch:
#   make resnet-bench   (needs `pip install torch`; see bench/README.md)
RESNET_BENCH_BIN := $(BUILD)/bin/advcl_resnet_bench

$(RESNET_BENCH_BIN): $(BUILD)/bench/resnet_step_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

.PHONY: resnet-bench
resnet-bench: $(RESNET_BENCH_BIN)
	python3 bench/resnet_step_bench.py --build $(BUILD)

-include $(BUILD)/bench/resnet_step_bench.d

# --- k-means and AdvCL-step benches (issue 7) ---------------------------------
# Two more timing binaries, built by `make bench-kmeans` / `make bench-step`
# (not by `make all`), each run through its Python script, which times
# scikit-learn + faiss-cpu or PyTorch on the same data and thread count.
KMEANS_BENCH_BIN := $(BUILD)/bin/advcl_kmeans_bench
STEP_BENCH_BIN := $(BUILD)/bin/advcl_step_bench

$(KMEANS_BENCH_BIN): $(BUILD)/bench/kmeans_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

$(STEP_BENCH_BIN): $(BUILD)/bench/advcl_step_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

.PHONY: bench-kmeans bench-step
bench-kmeans: $(KMEANS_BENCH_BIN)
	python3 bench/kmeans_bench.py --build $(BUILD)

bench-step: $(STEP_BENCH_BIN)
	python3 bench/advcl_step_bench.py --build $(BUILD)

-include $(BUILD)/bench/kmeans_bench.d $(BUILD)/bench/advcl_step_bench.d

# --- Fuzzing the dataset parsers ---------------------------------------------
# `make fuzz` builds one libFuzzer harness per parser (tests/fuzz/fuzz_*.cpp) with
# clang++ -fsanitize=fuzzer,address,undefined and runs each for FUZZ_RUNS
# inputs from a small generated seed corpus (tests/fuzz/make_seeds.py). The parsers
# are compiled again here with clang and the sanitizers, apart from the main
# build; tests/fuzz/ (like tests/mpi/) is left out of TEST_CPP, so neither the
# library nor the test binary picks it up. Findings land in build/fuzz/.
FUZZ_CXX ?= clang++
FUZZ_RUNS ?= 20000
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++17 -O1 -g -I. -Wall -Wextra $(FUZZ_SAN)
FUZZ_NAMES := cifar_binary pickle idx stl10 tar image
# Only the parsing code (and engine/dtype.cpp for shape_str): no OpenMP, no BLAS.
FUZZ_LIB_CPP := engine/dtype.cpp $(addprefix datasets/,byte_stream.cpp cifar.cpp dataset_builder.cpp image_dataset.cpp image_fit.cpp \
                  idx.cpp pickle.cpp stl10.cpp tar_reader.cpp image_folder.cpp jpeg_check.cpp png_check.cpp \
                  stb_image_impl.cpp)
FUZZ_LIB_OBJ := $(FUZZ_LIB_CPP:%.cpp=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/bin/fuzz_%)

$(FUZZ_DIR)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/bin/fuzz_%: tests/fuzz/fuzz_%.cpp $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $^ -lz -o $@

.PHONY: fuzz fuzz-build fuzz-run
fuzz:
	bash scripts/setup.sh --fuzz
	$(MAKE) fuzz-run

fuzz-build: $(FUZZ_BINS)

# Each harness keeps what it learns in build/fuzz/corpus/<name> (so a second
# `make fuzz` goes further), its log in build/fuzz/<name>.log, and a crashing
# input in build/fuzz/crash-<name>-*. Inputs stop at 16 KiB (64 KiB for STL-10,
# whose records are 27 KiB each; 1 MiB for pickles, whose deep-nesting seed
# holds 300,000 levels).
fuzz-run: fuzz-build
	rm -rf $(FUZZ_DIR)/seeds && python3 tests/fuzz/make_seeds.py $(FUZZ_DIR)/seeds
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n; \
	  echo "fuzz: $$n ($(FUZZ_RUNS) runs)"; \
	  len=16384; [ $$n != stl10 ] || len=65536; [ $$n != pickle ] || len=1048576; \
	  $(FUZZ_DIR)/bin/fuzz_$$n -runs=$(FUZZ_RUNS) -max_len=$$len -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/crash-$$n- $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/seeds/$$n > $(FUZZ_DIR)/$$n.log 2>&1 \
	    || { tail -40 $(FUZZ_DIR)/$$n.log; echo "fuzz: $$n FAILED, see $(FUZZ_DIR)/$$n.log and crash-$$n-*"; exit 1; }; \
	  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' $(FUZZ_DIR)/$$n.log; \
	done; echo "fuzz: all harnesses ran clean"

-include $(FUZZ_LIB_OBJ:.o=.d)

# --- Loader throughput bench (issue 6) ----------------------------------------
# Our batch loader against PyTorch's DataLoader on CIFAR-10-shaped data:
#   make loader-bench   (needs `pip install torch torchvision`; bench/README.md)
LOADER_BENCH_BIN := $(BUILD)/bin/advcl_loader_bench

$(LOADER_BENCH_BIN): $(BUILD)/bench/loader_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ $(LDLIBS)

.PHONY: loader-bench
loader-bench: $(LOADER_BENCH_BIN)
	python3 bench/loader_bench.py --build $(BUILD)

-include $(BUILD)/bench/loader_bench.d
