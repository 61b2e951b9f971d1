# witn — PGXS build. `make && make install` builds and installs the extension;
# `make unit` and `make fuzz` build and run the core's GoogleTest suite and libFuzzer target;
# `make installcheck` runs the pg_regress suite against a running server.
EXTENSION  = witn
MODULE_big = witn
EXTVERSION = 0.8.0
# The install script is assembled from sql/install/*.sql, one file per concern, in name order.
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
DATA_built    = sql/witn--$(EXTVERSION).sql
DATA          = $(filter-out $(DATA_built),$(wildcard sql/witn--*.sql))

CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
PG_SRCS   = $(sort $(wildcard src/pg/*.cpp))
OBJS      = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

REGRESS      = $(patsubst sql/%.sql,%,$(filter-out sql/witn--%,$(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=.

PG_CONFIG ?= pg_config
# PostgreSQL's headers are C: include them as system headers so C++ warnings about them do
# not fail the -Werror build.
PG_CXXFLAGS = -std=c++20 -Wall -Wextra -Werror -Isrc -isystem $(shell $(PG_CONFIG) --includedir-server) -MMD -MP \
              -DWITN_VERSION='"$(EXTVERSION)"'
SHLIB_LINK  = -lstdc++ -lcurl

# The JIT bitcode would need clang with our C++20 flags; witn has nothing worth inlining.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Header dependencies, so that changing a header rebuilds what includes it.
-include $(OBJS:.o=.d)
# The version is compiled in (WITN_VERSION): a new EXTVERSION rebuilds what uses it.
$(patsubst %.cpp,%.o,$(shell grep -l WITN_VERSION $(PG_SRCS))): Makefile

# The attribution methods are listed once, in the core (src/core/attribution.hpp); the install
# script's agents check and its message get them from there.
ATTRIBUTION_METHODS = $(shell grep -o 'AttributionMethod::[A-Za-z]*, "[a-z]*"' src/core/attribution.hpp | sed 's/.*"\([a-z]*\)"/\1/')
empty :=
space := $(empty) $(empty)
comma := ,
sql/witn--$(EXTVERSION).sql: $(INSTALL_PARTS) src/core/attribution.hpp
	@test -n "$(ATTRIBUTION_METHODS)" || { echo "no attribution methods found in src/core/attribution.hpp"; exit 1; }
	cat $(INSTALL_PARTS) | sed -e "s/@WITN_VERSION@/$(EXTVERSION)/g" -e "s/@ATTRIBUTION_METHODS_SQL@/$(subst $(space),$(comma) ,$(patsubst %,'%',$(ATTRIBUTION_METHODS)))/g" \
	    -e "s/@ATTRIBUTION_METHODS_TEXT@/$(subst $(space),$(comma) ,$(ATTRIBUTION_METHODS))/g" > $@

# ---- core tests, independent of PostgreSQL --------------------------------------------------
UNIT_CXX   ?= g++
UNIT_FLAGS  = -std=c++20 -Wall -Wextra -Werror -O1 -g -Isrc -Itest -Itest/unit
UNIT_SRCS   = $(sort $(wildcard test/unit/*.cpp))

# One object per source (in test/unit/obj, apart from the extension's own -fPIC objects), so
# that make -j builds them in parallel.
UNIT_OBJ_DIR = test/unit/obj
UNIT_OBJS    = $(patsubst src/core/%.cpp,$(UNIT_OBJ_DIR)/core_%.o,$(CORE_SRCS)) \
               $(patsubst test/unit/%.cpp,$(UNIT_OBJ_DIR)/test_%.o,$(UNIT_SRCS))
UNIT_HEADERS = $(wildcard src/core/*.hpp) $(wildcard test/unit/*.hpp) test/reference_evaluator.hpp
$(UNIT_OBJ_DIR)/core_%.o: src/core/%.cpp $(UNIT_HEADERS)
	@mkdir -p $(UNIT_OBJ_DIR)
	$(UNIT_CXX) $(UNIT_FLAGS) -c -o $@ $<
$(UNIT_OBJ_DIR)/test_%.o: test/unit/%.cpp $(UNIT_HEADERS)
	@mkdir -p $(UNIT_OBJ_DIR)
	$(UNIT_CXX) $(UNIT_FLAGS) -c -o $@ $<
test/unit/witn_unit: $(UNIT_OBJS)
	$(UNIT_CXX) $(UNIT_FLAGS) -o $@ $(UNIT_OBJS) -lgtest -lgtest_main -pthread

unit: test/unit/witn_unit
	test/unit/witn_unit

FUZZ_CXX     ?= clang++
FUZZ_FLAGS    = -std=c++20 -g -O1 -Isrc -Itest -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS  = $(patsubst %.cpp,%,$(sort $(wildcard test/fuzz/*_fuzz.cpp)))
FUZZ_SECONDS ?= 60

test/fuzz/%_fuzz: test/fuzz/%_fuzz.cpp $(CORE_SRCS) $(wildcard src/core/*.hpp) $(wildcard test/unit/*.hpp) test/reference_evaluator.hpp
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $< $(CORE_SRCS)

fuzz-build: $(FUZZ_TARGETS)

# Runs every fuzz target for FUZZ_SECONDS in total, starting from its seed corpus.
fuzz: fuzz-build
	@test -n "$(FUZZ_TARGETS)" || { echo "no fuzz targets in test/fuzz"; exit 1; }
	@per=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) )); \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $$t.corpus; \
	  $$t -max_total_time=$$per -rss_limit_mb=2048 -print_final_stats=1 $$t.corpus test/fuzz/seeds || exit 1; \
	done

EXTRA_CLEAN = $(OBJS:.o=.d) test/unit/witn_unit $(UNIT_OBJ_DIR) $(FUZZ_TARGETS) results regression.diffs regression.out

.PHONY: unit fuzz fuzz-build
