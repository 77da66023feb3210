# synod — build, test, run and measure. `make run` and `make test` work as
# the first command on a fresh Debian 12 machine: `deps` installs whatever
# Debian package is missing (apt-get, as root or through sudo).

PKGS := gcc make pkg-config lua5.4 liblua5.4-dev libuv1-dev libsodium-dev \
        libedit-dev lua-busted lua-dkjson lua-system \
        libsqlite3-dev libhttp-parser-dev curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

CC      ?= gcc
CFLAGS  ?= -O2 -g
# Always on, whatever CFLAGS a caller sets (make asan sets its own).
SYN_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
              $(shell pkg-config --cflags lua5.4 libuv libsodium libedit sqlite3 2>/dev/null)
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LIBS     = $(shell pkg-config --libs libuv libsodium sqlite3 2>/dev/null) -lhttp_parser -lm
EXELIBS  = $(shell pkg-config --libs lua5.4 libedit 2>/dev/null)

BUILD   ?= build
# The executable's own sources (libedit is linked into ./synod only).
EXESRCS := engine/main.c engine/live/console.c
SRCS    := $(filter-out $(EXESRCS),$(shell find engine -name '*.c' | sort))
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
EXEOBJS := $(EXESRCS:%.c=$(BUILD)/%.o)
DEPS    := $(OBJS:.o=.d) $(EXEOBJS:.o=.d)

SEEDS   ?= $(SYNOD_SEEDS)
LUA_ENV := LUA_PATH='./scripts/?.lua;./scripts/?/init.lua;;' LUA_CPATH='./?.so;;'
BUSTED  ?= busted --lua=lua5.4

.PHONY: all build run test bench bench-live cluster asan soak clean deps

all: deps
	@$(MAKE) --no-print-directory build

build: synod synod.so

deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "make deps: apt-get failed for$$missing" >&2; exit 1; }; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SYN_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

synod: $(OBJS) $(EXEOBJS)
	$(CC) $(SYN_CFLAGS) $(CFLAGS) -o $@ $^ $(LIBS) $(EXELIBS) -Wl,-E

# The Lua module: its symbols come from the interpreter that loads it.
synod.so: $(OBJS)
	$(CC) $(SYN_CFLAGS) $(CFLAGS) -shared -o $@ $^ $(LIBS)

build-asan/synod.so: $(OBJS)
	$(CC) $(SYN_CFLAGS) $(CFLAGS) -shared -o $@ $^ $(LIBS)

run: all
	./synod run scenarios/showcase.lua

test: all
	@SYNOD_SEEDS="$(SEEDS)" $(BUSTED)

bench: all
	@$(LUA_ENV) lua5.4 scripts/bench.lua $(BENCH_ARGS)

# Closed-loop clients against a local 4-node PBFT cluster over loopback.
bench-live: all
	./synod bench $(BENCH_ARGS)

# A local 4-node PBFT cluster in ./cluster (synod cluster status / submit / down).
cluster: all
	./synod cluster up -n 4

# Every spec (100,000 fuzzed frames among them) against a sanitizer build of
# the module; scenarios run through ./synod, built as usual.
asan: all
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(SANFLAGS)" build-asan/synod.so
	@LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \
	  SYNOD_HOME=$(CURDIR) SYNOD_FUZZ_FRAMES=100000 $(BUSTED) --cpath='./build-asan/?.so'

soak: all   # TOM: 5,000 random runs; PBFT: 10,000 (SYNOD_SOAK_SEEDS sets both)
	@$(BUSTED) --tags=soak --exclude-tags=none

clean:
	rm -rf build build-asan synod synod.so

-include $(DEPS)
