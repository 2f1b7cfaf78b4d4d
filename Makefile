# matchd build.  `make run` and `make test` are the two entry points; both
# install missing Debian packages first through tools/install-deps.
#
# Every src/*.c except the program mains goes into one static library per
# build mode, so a new module needs no Makefile change.  Each unit test
# tests/unit/test_<module>.c links against that library.

CC      ?= cc
MODES   := release asan
PROGS   := matchd matchctl matchgen matchbench
LIBS    := -luring -llmdb -lmsgpackc -lxxhash -ljansson -lpthread -lm
WARN    := -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wvla -D_GNU_SOURCE
CFLAGS_release := -O2 -g
CFLAGS_asan    := -O1 -g -fsanitize=address,undefined \
                  -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS_release :=
LDFLAGS_asan    := -fsanitize=address,undefined

MAINS   := $(addprefix src/,$(addsuffix .c,$(PROGS)))
LIBSRC  := $(filter-out $(MAINS),$(wildcard src/*.c))
TESTSRC := $(wildcard tests/unit/test_*.c)
HDRS    := $(wildcard src/*.h) $(wildcard tests/unit/*.h)

obj  = $(patsubst src/%.c,build/$(1)/%.o,$(2))
tbin = $(patsubst tests/unit/%.c,build/$(1)/tests/%,$(TESTSRC))

.PHONY: all deps build run test unit e2e asan clean bench
# Keep the object files of the program mains between runs.
.SECONDARY:
all: build

deps:
	@tools/install-deps

build: deps $(addprefix bin/,$(PROGS))
asan: deps $(addprefix build/asan/bin/,$(PROGS))

define mode_rules
build/$(1)/%.o: src/%.c $(HDRS) | build/$(1)
	$$(CC) $$(WARN) $$(CFLAGS_$(1)) -Isrc -c $$< -o $$@
build/$(1)/libmatch.a: $(call obj,$(1),$(LIBSRC))
	rm -f $$@ && ar rcs $$@ $$^
build/$(1)/tests/%: tests/unit/%.c build/$(1)/libmatch.a $(HDRS) | build/$(1)
	$$(CC) $$(WARN) $$(CFLAGS_$(1)) -Isrc -Itests/unit $$< \
		build/$(1)/libmatch.a $$(LDFLAGS_$(1)) $$(LIBS) -o $$@
build/$(1):
	mkdir -p build/$(1)/tests build/$(1)/bin
endef
$(foreach m,$(MODES),$(eval $(call mode_rules,$(m))))

bin/%: build/release/%.o build/release/libmatch.a
	@mkdir -p bin
	$(CC) $< build/release/libmatch.a $(LIBS) -o $@
build/asan/bin/%: build/asan/%.o build/asan/libmatch.a
	$(CC) $< build/asan/libmatch.a $(LDFLAGS_asan) $(LIBS) -o $@

unit: deps $(call tbin,release) $(call tbin,asan)
	@tests/run-unit $(call tbin,release) $(call tbin,asan)

e2e: build asan
	@tests/run-e2e bin build/asan/bin

# Both halves, then one closing line with the totals.
test: deps $(call tbin,release) $(call tbin,asan) build asan
	@tests/run-all $(call tbin,release) $(call tbin,asan)

run: build
	@tools/run-demo

bench: build
	@bench/run --scale demo

clean:
	rm -rf build bin
