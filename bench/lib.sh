# bench/lib.sh: shell functions the bench scripts share.  Sourced, not run:
# the script that sources it has already set `set -euo pipefail` and is in
# the top of the checkout.

# The C flags of the Makefile's release build, for the bench programs
# built outside it.
bench_cflags="-std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wvla -D_GNU_SOURCE -O2 -g"

# build_index_bench OUT: builds bench/index_bench.c (the in-process search
# benchmark and the maker of the query set) into OUT.
build_index_bench() {
	# shellcheck disable=SC2086
	cc $bench_cflags -Isrc bench/index_bench.c src/index.c src/text.c \
		src/ref.c src/proto.c src/record.c src/jsonmp.c \
		-lmsgpackc -lxxhash -ljansson -lm -lpthread -o "$1"
}

# free_port: prints a loopback TCP port that nothing listens on now.
free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# stop_pid PID: SIGTERM, up to 15 s for a clean exit (matchd commits and
# closes LMDB), then SIGKILL; reaps it.  Nothing to do for an empty PID.
stop_pid() {
	local pid=$1 tenths
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((tenths = 0; tenths < 150; tenths++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# wait_for_line FILE SECONDS TEXT PID: true once FILE holds TEXT, false
# after SECONDS or as soon as PID has exited.
wait_for_line() {
	local file=$1 seconds=$2 text=$3 pid=$4 tenths
	for ((tenths = 0; tenths < seconds * 10; tenths++)); do
		grep -q "$text" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Seconds since the epoch with nanoseconds; elapsed T0 T1 prints T1 - T0
# with two decimals.
now() { date +%s.%N; }
elapsed() { /usr/bin/python3 -c "print(f'{$2 - $1:.2f}')"; }

# vmrss_mb PID: the process's resident memory in MiB.
vmrss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# bench_commit: the commit to name in a report; BENCH_COMMIT, when set,
# names it for a tree without .git.
bench_commit() {
	if [ -n "${BENCH_COMMIT:-}" ]; then
		echo "$BENCH_COMMIT"
	else
		git rev-parse --short HEAD 2>/dev/null || echo unknown
	fi
}

# bench_machine: "N cores (CPU), Linux KERNEL".
bench_machine() {
	echo "$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' \
		/proc/cpuinfo)), Linux $(uname -r)"
}
