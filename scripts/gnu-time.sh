# gnu-time.sh is sourced by the benchmark scripts that measure peak RSS
# with GNU time (`/usr/bin/time -v`): it installs it with apt-get when
# missing, so a fresh Debian machine runs them as `make test` runs there.
if ! /usr/bin/time -v true >/dev/null 2>&1; then
	echo "GNU time not found at /usr/bin/time: installing it with apt-get" >&2
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "error: no apt-get on this machine; install GNU time (/usr/bin/time) with your package manager" >&2
		exit 1
	fi
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends time >/dev/null
fi
