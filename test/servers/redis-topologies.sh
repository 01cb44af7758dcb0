#!/usr/bin/env bash
# Real Redis topologies on loopback for the store.redis suites: a 6-node Cluster (3 masters, 3
# replicas), a Sentinel setup (a primary, a replica, 3 sentinels) and a TLS server with an ACL user
# and a self-signed CA. Debian's redis-server, redis-sentinel and openssl; no persistence.
#
#   source test/servers/redis-topologies.sh start BASE_PORT   # uses ports BASE_PORT .. BASE_PORT+11
#   source test/servers/redis-topologies.sh stop
#
# `start` exports what the tests read:
#   LUASTORE_REDIS_CLUSTER_NODES   comma-separated redis:// seed URLs of the Cluster nodes
#   LUASTORE_REDIS_SENTINELS       comma-separated host:port of the sentinels
#   LUASTORE_REDIS_SENTINEL_NAME   the monitored primary's name
#   LUASTORE_REDIS_TLS_URL         rediss:// URL of the TLS server (ACL user, no password in the URL)
#   LUASTORE_REDIS_TLS_CA / _CERT / _KEY   PEM files: the CA, and a client certificate and key
#   LUASTORE_REDIS_TLS_USER / LUASTORE_REDIS_TLS_PASSWORD   the ACL user the TLS server admits
#   LUASTORE_REDIS_TOPOLOGY_DIR    the servers' directory: <port>/start restarts a stopped server
# `stop` kills every server `start` started (by the pid files in that directory) and removes it.

topologies_start() {
  local base=${1:?base port}
  local dir
  dir="$(mktemp -d /tmp/luastore-topologies.XXXXXX)"
  export LUASTORE_REDIS_TOPOLOGY_DIR="$dir"
  local common=(--bind 127.0.0.1 --save '' --appendonly no --daemonize yes --enable-debug-command local)

  # A server in $dir/<port>, with a start script of its own so that a test can restart it.
  topologies_server() {
    local port=$1; shift
    mkdir -p "$dir/$port"
    local args=(--port "$port" --dir "$dir/$port" --pidfile "$dir/$port/pid" --logfile "$dir/$port/log" "$@")
    printf 'exec %q' "${TOPOLOGIES_BINARY:-redis-server}" >"$dir/$port/start"
    printf ' %q' "${args[@]}" >>"$dir/$port/start"
    echo >>"$dir/$port/start"
    sh "$dir/$port/start"
  }
  topologies_wait() {
    local i
    for i in $(seq 1 100); do
      if redis-cli "$@" ping 2>/dev/null | grep -q PONG; then return 0; fi
      sleep 0.1
    done
    echo "redis-topologies: no PONG from redis-cli $*" >&2
    return 1
  }

  # Cluster: 6 nodes, a short node timeout so that a replica takes over a killed master in ~2 s, and
  # the other masters keep serving their slots meanwhile (the fault tests kill one while the
  # conformance suite runs on another).
  local seeds=() cluster=() port
  for port in $(seq "$base" $((base + 5))); do
    topologies_server "$port" "${common[@]}" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 1000 --cluster-require-full-coverage no
    cluster+=("127.0.0.1:$port")
    seeds+=("redis://127.0.0.1:$port")
  done
  for port in $(seq "$base" $((base + 5))); do topologies_wait -p "$port" || return 1; done
  redis-cli --cluster create "${cluster[@]}" --cluster-replicas 1 --cluster-yes >"$dir/cluster-create.log" 2>&1 || {
    cat "$dir/cluster-create.log" >&2
    return 1
  }

  # Sentinel: a primary, its replica and three sentinels (quorum 2).
  local primary=$((base + 6)) replica=$((base + 7))
  topologies_server "$primary" "${common[@]}"
  topologies_server "$replica" "${common[@]}" --replicaof 127.0.0.1 "$primary"
  topologies_wait -p "$primary" || return 1
  topologies_wait -p "$replica" || return 1
  local sentinels=()
  for port in $((base + 8)) $((base + 9)) $((base + 10)); do
    mkdir -p "$dir/$port"
    cat >"$dir/$port/sentinel.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
dir $dir/$port
pidfile $dir/$port/pid
logfile $dir/$port/log
sentinel monitor luastore 127.0.0.1 $primary 2
sentinel down-after-milliseconds luastore 1000
sentinel failover-timeout luastore 5000
CONF
    printf 'exec redis-sentinel %q\n' "$dir/$port/sentinel.conf" >"$dir/$port/start"
    sh "$dir/$port/start"
    sentinels+=("127.0.0.1:$port")
  done
  for port in $((base + 8)) $((base + 9)) $((base + 10)); do topologies_wait -p "$port" || return 1; done

  # TLS: a CA, a server and a client certificate; only the ACL user may connect.
  local tls=$((base + 11)) pki="$dir/pki"
  mkdir -p "$pki"
  (
    cd "$pki" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=luastore-test-ca -keyout ca.key -out ca.crt
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$who.key" -out "$who.csr"
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$who.ext"
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$who.ext" -out "$who.crt"
    done
  ) >"$dir/pki.log" 2>&1 || {
    cat "$dir/pki.log" >&2
    return 1
  }
  local password
  password="$(openssl rand -hex 16)"
  topologies_server "$tls" "${common[@]}" --port 0 --tls-port "$tls" --tls-cert-file "$pki/server.crt" \
    --tls-key-file "$pki/server.key" --tls-ca-cert-file "$pki/ca.crt" --tls-auth-clients yes \
    --user default off --user luastore on ">$password" '~*' '&*' '+@all'
  local tls_cli=(--tls --cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key" -p "$tls"
    --user luastore --pass "$password" --no-auth-warning)
  topologies_wait "${tls_cli[@]}" || return 1

  # Every Cluster node agrees that all slots are served, and every replica has synced.
  local i ok
  for i in $(seq 1 100); do
    ok=1
    for port in $(seq "$base" $((base + 5))); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    for port in $(seq "$base" $((base + 5))) "$replica"; do
      if redis-cli -p "$port" role 2>/dev/null | head -1 | grep -q slave; then
        redis-cli -p "$port" info replication | grep -q 'master_link_status:up' || ok=0
      fi
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    echo "redis-topologies: the Cluster or the replicas did not come up" >&2
    return 1
  fi

  export LUASTORE_REDIS_CLUSTER_NODES
  LUASTORE_REDIS_CLUSTER_NODES="$(IFS=,; echo "${seeds[*]}")"
  export LUASTORE_REDIS_SENTINELS
  LUASTORE_REDIS_SENTINELS="$(IFS=,; echo "${sentinels[*]}")"
  export LUASTORE_REDIS_SENTINEL_NAME=luastore
  export LUASTORE_REDIS_TLS_URL="rediss://127.0.0.1:$tls/0"
  export LUASTORE_REDIS_TLS_CA="$pki/ca.crt" LUASTORE_REDIS_TLS_CERT="$pki/client.crt" LUASTORE_REDIS_TLS_KEY="$pki/client.key"
  export LUASTORE_REDIS_TLS_USER=luastore LUASTORE_REDIS_TLS_PASSWORD="$password"
}

topologies_stop() {
  local dir=${LUASTORE_REDIS_TOPOLOGY_DIR:-}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  local pidfile pid pids=() i
  for pidfile in "$dir"/*/pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  # A server logs its shutdown after the signal: removing the directory before it exits would
  # leave its log file behind in a new copy of its directory.
  for pid in "${pids[@]}"; do
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$dir"
  unset LUASTORE_REDIS_TOPOLOGY_DIR LUASTORE_REDIS_CLUSTER_NODES LUASTORE_REDIS_SENTINELS LUASTORE_REDIS_SENTINEL_NAME \
    LUASTORE_REDIS_TLS_URL LUASTORE_REDIS_TLS_CA LUASTORE_REDIS_TLS_CERT LUASTORE_REDIS_TLS_KEY \
    LUASTORE_REDIS_TLS_USER LUASTORE_REDIS_TLS_PASSWORD
  return 0
}

case "${1:-}" in
  start) shift; topologies_start "$@" ;;
  stop) topologies_stop ;;
  *) echo "usage: source test/servers/redis-topologies.sh start BASE_PORT | stop" >&2; false ;;
esac
