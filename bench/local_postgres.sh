#!/usr/bin/env bash
# A throwaway Postgres server behind PgBouncer, for `python -m bench --dagster-storage postgres`.
#
#   bench/local_postgres.sh start DIR   # prints the DAGSTER_PG_* settings to export
#   bench/local_postgres.sh stop DIR
#
# Needs the machine's PostgreSQL server (initdb, pg_ctl: on the PATH or under /usr/lib/postgresql)
# and pgbouncer. Ports: BENCH_PG_PORT and BENCH_PGBOUNCER_PORT (below the ephemeral range, where a
# client socket cannot be holding them). Clients reach the server through PgBouncer (session pooling):
# dagster-postgres opens a new connection for every event it stores, and a pooler is what keeps
# that from being a new server process each time. Trust authentication on loopback only: a
# benchmark database, not a deployment.
set -euo pipefail

action=${1:?start or stop}
dir=$(realpath -m "${2:?a folder for the server}")
pg_port=${BENCH_PG_PORT:-25432}
bouncer_port=${BENCH_PGBOUNCER_PORT:-26432}
bin=$(dirname "$(readlink -f "$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")")

as_owner() {  # Postgres refuses to run as root: run as the postgres user then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $action in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -d "$dir/data" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log"
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null ||
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir" start >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qAt -c "select 1 from pg_database where datname = 'bench'" |
    grep -q 1 || "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres bench
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$pg_port dbname=bench user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
auth_type = trust
auth_file = $dir/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 10
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  echo '"postgres" ""' >"$dir/users.txt"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pgbouncer.ini" "$dir/users.txt"
  [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null ||
    as_owner pgbouncer -d "$dir/pgbouncer.ini"
  echo "export DAGSTER_PG_USER=postgres DAGSTER_PG_PASSWORD= DAGSTER_PG_HOST=127.0.0.1" \
    "DAGSTER_PG_PORT=$bouncer_port DAGSTER_PG_DB=bench DAGSTER_EVENT_BATCH_SIZE=200"
  ;;
stop)
  [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" || true
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
