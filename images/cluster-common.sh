# images/cluster-common.sh: what images/cluster (namespaces) and images/containers share:
# the clock and bounded waits, the state's cluster.env, address and host-port checks, the
# lock. Sourced, not run. The sourcing script defines `die` (its own prefix) and sets C,
# STATE, LOCK, CLUSTER_ENV, TOOL (its name, for messages), DEFAULT_SUBNET, DEFAULT_PORTS,
# DEFAULT_BIND, COLLECTOR_PORT, HA_OCTET, TOKEN_FILE and DB before calling these (images/cluster
# also STORE, COLLECTOR_URLS and STORE_FILE, which env_lines prints on a scale-out store).

# Milliseconds since the epoch (EPOCHREALTIME's decimal point depends on the locale).
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; printf '%s' $((t / 1000)); }

# MILLISECONDS as "S.T s".
elapsed_text() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# The time since START (milliseconds from now_ms) as "S.T s".
elapsed_since() { elapsed_text $(($(now_ms) - $1)); }

# wait_until SECONDS CMD...: run CMD until it succeeds (status 0) or SECONDS have passed
# (status 1). Polls every 50 ms for the first second, then every 200 ms. WAITED is set to the
# time spent, e.g. "2.4 s", for messages.
wait_until() {
  local limit_ms=$(($1 * 1000)) start now
  shift
  start=$(now_ms)
  while :; do
    if "$@"; then
      now=$(now_ms)
      WAITED=$(elapsed_text $((now - start)))
      return 0
    fi
    now=$(now_ms)
    if ((now - start >= limit_ms)); then
      WAITED=$(elapsed_text $((now - start)))
      return 1
    fi
    if ((now - start < 1000)); then sleep 0.05; else sleep 0.2; fi
  done
}

# COUNT dot-separated decimal octets, e.g. `valid_octets 3 10.77.0`.
valid_octets() {
  local IFS=. o
  # shellcheck disable=SC2206
  local parts=($2)
  [[ $2 =~ ^[0-9]{1,3}(\.[0-9]{1,3})*$ && ${#parts[@]} == "$1" ]] || return 1
  for o in "${parts[@]}"; do ((10#$o <= 255)) || return 1; done
}

# KEY's value in cluster.env, or DEFAULT when the file or the key is missing (a recorded
# empty value stays empty).
recorded() {
  if [[ -f $CLUSTER_ENV ]] && grep -q "^$1=" "$CLUSTER_ENV"; then
    sed -n "s/^$1=//p" "$CLUSTER_ENV" | tail -1
  else
    printf '%s' "$2"
  fi
}

# Setting NAME as `up` recorded it in cluster.env, which the environment may only repeat
# (a cluster keeps its subnet, engine, ...); before `up`, the environment's, else DEFAULT.
# Sets REPLY.
recorded_setting() {
  local name=$1 default=$2 used
  used=$(recorded "$name" "")
  if [[ -n $used && -n ${!name:-} && ${!name} != "$used" ]]; then
    die "cluster $C was started with $name=$used (in $CLUSTER_ENV), not ${!name}"
  fi
  REPLY=${used:-${!name:-$default}}
}

# The subnet (recorded_setting MUSTER_CLUSTER_SUBNET, DEFAULT_SUBNET when none) and the
# addresses that follow from it: SUBNET, COLLECTOR_URL, HA_ADDRESS.
load_subnet() {
  recorded_setting MUSTER_CLUSTER_SUBNET "$DEFAULT_SUBNET"
  SUBNET=$REPLY
  valid_octets 3 "$SUBNET" || die "MUSTER_CLUSTER_SUBNET must be the first three octets of a /24, e.g. $DEFAULT_SUBNET; got '$SUBNET'"
  COLLECTOR_URL="http://${SUBNET}.2:${COLLECTOR_PORT}"
  HA_ADDRESS="${SUBNET}.${HA_OCTET}"
}

# What `env` prints: the cluster's settings and paths, then the host-port URLs (url_lines,
# the sourcing script's own). On a scale-out store (STORE, images/cluster's), every
# collector's URL and the store's file for logq instead of the database.
env_lines() {
  echo "MUSTER_CLUSTER=$C"
  echo "MUSTER_CLUSTER_SUBNET=$SUBNET"
  echo "MUSTER_CLUSTER_STATE=$STATE"
  echo "MUSTER_COLLECTOR_URL=$COLLECTOR_URL"
  echo "MUSTER_TOKEN_FILE=$TOKEN_FILE"
  if [[ ${STORE:-sqlite} == scale-out ]]; then
    echo "MUSTER_COLLECTOR_URLS=$COLLECTOR_URLS"
    echo "MUSTER_STORE=$STORE_FILE"
  else
    echo "MUSTER_DB=$DB"
  fi
  url_lines
}

# The host ports to ha: MUSTER_CLUSTER_PORTS / MUSTER_CLUSTER_BIND when set (even empty),
# else what the last `up` recorded in cluster.env, else DEFAULT_PORTS / DEFAULT_BIND. Sets
# PORTS ("HOST:CONTAINER ...", validated, no host port twice) and BIND.
load_ports() {
  local spec bind pair host container seen=" "
  spec=$(recorded MUSTER_CLUSTER_PORTS "$DEFAULT_PORTS")
  spec=${MUSTER_CLUSTER_PORTS-$spec}
  bind=$(recorded MUSTER_CLUSTER_BIND "$DEFAULT_BIND")
  BIND=${MUSTER_CLUSTER_BIND-$bind}
  valid_octets 4 "$BIND" || die "MUSTER_CLUSTER_BIND must be an IPv4 address, got '$BIND'"
  PORTS=""
  for pair in ${spec//,/ }; do
    [[ $pair =~ ^([0-9]{1,5}):([0-9]{1,5})$ ]] || die "MUSTER_CLUSTER_PORTS: '$pair' is not HOSTPORT:PORT (e.g. \"8080:80 11936:1936\")"
    host=$((10#${BASH_REMATCH[1]}))
    container=$((10#${BASH_REMATCH[2]}))
    ((host >= 1 && host <= 65535 && container >= 1 && container <= 65535)) || die "MUSTER_CLUSTER_PORTS: port out of range in '$pair'"
    [[ $seen != *" $host "* ]] || die "MUSTER_CLUSTER_PORTS: host port $host appears twice"
    seen+="$host "
    PORTS+="$host:$container "
  done
  PORTS=${PORTS% }
}

# Mutating commands hold this lock, so parallel `add`s in one cluster do not race for an
# address. The lock file sits beside the state dir so `down` can remove the dir under it.
take_lock() {
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$LOCK"
  flock -w 120 9 || die "another $TOOL command holds $LOCK"
}

valid_node_name() {
  [[ $1 =~ ^[a-z][a-z0-9-]{0,14}$ ]] || die "node name must match ^[a-z][a-z0-9-]{0,14}\$, got '$1'"
}
