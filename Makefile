# pg_ingest — top-level Makefile.
#   make                 build the extension (WERROR=1 makes warnings errors, as CI does)
#   make install         install the extension into the PostgreSQL found by pg_config (needs root)
#   make client          build libpgingest, its tests, examples and the pgingest tools (CMake, build/client)
#   make test            every test: SQL (pg_regress), isolation, TAP crash tests, client unit tests
#   make format          clang-format the C++ sources
#   make deps            install build and test dependencies (apt-get)
#   make quickstart      the README's first command; make quickstart-stop removes its cluster
#   make bench           the benchmark suite (bench/run.sh)

EXTENSION  = pg_ingest
MODULE_big = pg_ingest
MODULEDIR  = extension
OBJS       = $(patsubst %.cpp,%.o,$(wildcard extension/*.cpp))
DATA       = extension/pg_ingest--0.1.0.sql extension/pg_ingest--0.2.0.sql \
             extension/pg_ingest--0.1.0--0.2.0.sql extension/pg_ingest--0.2.0--0.3.0.sql
PGFILEDESC = "pg_ingest - asynchronous batched ingestion"

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server)

# C++17; PostgreSQL's headers as -isystem so their warnings are not ours. WERROR=1 in CI.
WERROR ?= 0
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
              -isystem $(PG_INCLUDE_SERVER) $(if $(filter 1,$(WERROR)),-Werror)
SHLIB_LINK = -lstdc++
override with_llvm = no

include $(PGXS)

# PGXS puts the server include dir in CPPFLAGS with -I; drop it so -isystem wins.
override CPPFLAGS := $(filter-out -I$(PG_INCLUDE_SERVER),$(CPPFLAGS))
override CXXFLAGS := $(filter-out -Wmissing-format-attribute,$(CXXFLAGS))

extension/%.o: extension/%.cpp extension/*.hpp
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) -c -o $@ $<

# The control file lives in extension/; PGXS installs $(EXTENSION).control from the top.
pg_ingest.control: extension/pg_ingest.control
	cp $< $@
all: pg_ingest.control
EXTRA_CLEAN = pg_ingest.control build

.PHONY: test format deps client quickstart quickstart-stop bench
deps:
	scripts/install-deps.sh
client:
	cmake -S . -B build/client -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/client -j2
test:
	test/run-all.sh
format:
	clang-format -i extension/*.cpp extension/*.hpp $(shell find client test/client -name '*.cpp' -o -name '*.hpp' -o -name '*.h' 2>/dev/null)
quickstart:
	scripts/quickstart.sh
quickstart-stop:
	scripts/cluster.sh destroy
bench:
	bench/run.sh
