#!/bin/sh
# A test supervisor: restarts the redis-server whose pid is in $1, on port $2
# with its data in $3, the way systemctl or a container runtime would. Any
# further arguments are passed to redis-server (a cluster node's flags).
#
# It honours redisbot's restart contract: when REDISBOT_REPLICAOF is set
# ("<host> <port>", the old primary's restart after a failover), the server
# starts as a replica of that primary, so it never takes a write as a
# standalone primary.
set -eu
pidfile=$1 port=$2 dir=$3
shift 3
if [ -f "$pidfile" ]; then
	pid=$(cat "$pidfile")
	kill "$pid" 2>/dev/null || true
	i=0
	# An exited server whose parent has not reaped it yet (a zombie) holds
	# neither its port nor its files.
	while kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt 100 ] && kill -9 "$pid" 2>/dev/null || true
		sleep 0.05
	done
fi
if [ -n "${REDISBOT_REPLICAOF:-}" ]; then
	set -- "$@" --replicaof "$REDISBOT_REPLICAOF"
fi
exec redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --pidfile "$pidfile" \
	--daemonize yes --save "" --appendonly no --logfile "$dir/redis.log" "$@"
