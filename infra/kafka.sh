#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for ai-trader development and CI.
#
#   infra/kafka.sh install         copy the broker jars (Maven, infra/kafka/pom.xml) when missing/changed
#   infra/kafka.sh start           install if needed, format storage once, start the broker in background
#   infra/kafka.sh wait [SECONDS]  wait until the broker answers a metadata request (default 60 s)
#   infra/kafka.sh status          running/stopped; exit 0 when running, 3 when stopped
#   infra/kafka.sh stop            SIGTERM, up to 30 s for a clean shutdown, then SIGKILL
#   infra/kafka.sh tool CLASS|ALIAS [ARGS...]   run a Kafka CLI class on the broker classpath
#                                  (aliases: topics, console-producer, console-consumer, consumer-groups)
#   infra/kafka.sh reset           stop and delete data (topics, offsets); keeps the jars
#
# Environment: AI_TRADER_STATE_DIR (default <repo>/.state), KAFKA_PORT (19092),
# KAFKA_CONTROLLER_PORT (19093), KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), KAFKA_JVM_PERFORMANCE_OPTS,
# KAFKA_OPTS (extra JVM flags), KAFKA_WAIT_TIMEOUT (60), KAFKA_STOP_TIMEOUT (30), JAVA_HOME/JAVA,
# PYTHON (interpreter for the metadata check; python3 from PATH otherwise; none: log check), MVN (mvn),
# KAFKA_CDS (1: class-data-sharing archive in .state/kafka/cds for faster starts; 0: off).
# KAFKA_BOOTSTRAP_SERVERS set => an external cluster is used: start/stop do nothing.
set -euo pipefail

COMPONENT=kafka
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

HOST=127.0.0.1
PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
NODE_ID=1
KAFKA_DIR="$STATE_DIR/kafka"
LIBS="$KAFKA_DIR/libs"
DATA="$KAFKA_DIR/data"
LOGS="$KAFKA_DIR/logs"
PROPS="$KAFKA_DIR/server.properties"
PID_FILE="$KAFKA_DIR/kafka.pid"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
START_MARK="$KAFKA_DIR/start.offset"
POM="$INFRA_DIR/kafka/pom.xml"
TEMPLATE="$INFRA_DIR/kafka/server.properties.template"
LOG4J="$INFRA_DIR/kafka/log4j2.yaml"
TOOLS_LOG4J="$INFRA_DIR/kafka/tools-log4j2.yaml"
STAMP="$LIBS/.pom.sha256"
MAIN_CLASS=kafka.Kafka

HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
PERF_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"

java_bin() {
  if [[ -n "${JAVA:-}" ]]; then echo "$JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then command -v java
  else die "java not found (Kafka 4 needs Java 17+): install openjdk-17-jre-headless or set JAVA_HOME"
  fi
}

external() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    say "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set: using that external cluster, nothing to $1"
    return 0
  fi
  return 1
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_current() {
  compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null && [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]]
}

cmd_install() {
  if libs_current; then
    say "jars up to date in $LIBS ($(kafka_version))"
    return 0
  fi
  if [[ -n "$(our_pid)" ]]; then
    die "infra/kafka/pom.xml changed but the broker is running from $LIBS; run 'infra/kafka.sh stop' first"
  fi
  local mvn="${MVN:-mvn}" t0 tmp
  command -v "$mvn" >/dev/null 2>&1 || die "maven ('$mvn') not found: apt-get install -y maven"
  t0=$(now_ms)
  say "copying broker jars with Maven into $LIBS ..."
  mkdir -p "$KAFKA_DIR"
  tmp="$KAFKA_DIR/libs.tmp.$$"
  rm -rf "$tmp"
  if ! "$mvn" -B -q -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$KAFKA_DIR/install.log" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$KAFKA_DIR/install.log" >&2
    die "maven failed (full output: $KAFKA_DIR/install.log)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "maven copied no kafka_2.13 jar"; }
  pom_hash >"$tmp/.pom.sha256"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  say "installed $(kafka_version): $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | cut -f1) in $(elapsed_s "$t0")s"
}

kafka_version() {
  local jar
  jar="$(compgen -G "$LIBS/kafka_2.13-*.jar" | head -n1 || true)"
  jar="${jar##*/kafka_2.13-}"
  echo "Kafka ${jar%.jar}"
}

# Is PID a broker JVM started from this state dir?
is_ours() {
  local cmd
  pid_alive "$1" || return 1
  cmd="$(pid_cmdline "$1")"
  [[ "$cmd" == *" $MAIN_CLASS $PROPS"* ]]
}

# The pid of our running broker ("" when none): the PID file first, then a /proc scan
# (covers a deleted PID file).
our_pid() {
  local pid="" p
  [[ -f "$PID_FILE" ]] && pid="$(head -n1 "$PID_FILE" 2>/dev/null || true)"
  if is_ours "$pid"; then echo "$pid"; return 0; fi
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    if is_ours "$p"; then echo "$p"; return 0; fi
  done
  return 0
}

render_properties() {
  [[ -f "$TEMPLATE" ]] || die "missing $TEMPLATE"
  mkdir -p "$DATA" "$LOGS"
  sed -e "s#@BROKER_PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$DATA#g" -e "s#@NODE_ID@#$NODE_ID#g" "$TEMPLATE" >"$PROPS.tmp"
  if grep -q '@[A-Z_]*@' "$PROPS.tmp"; then
    die "unrendered placeholder in $TEMPLATE: $(grep -o '@[A-Z_]*@' "$PROPS.tmp" | head -n1)"
  fi
  mv "$PROPS.tmp" "$PROPS"
}

new_cluster_id() { # Kafka Uuid text form: 16 random bytes, URL-safe base64, no padding, not starting with '-'
  local id
  while :; do
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

format_storage() {
  local meta="$DATA/meta.properties" cid
  if [[ -f "$meta" ]]; then
    cid="$(sed -n 's/^cluster.id=//p' "$meta")"
    [[ -f "$CLUSTER_ID_FILE" ]] || echo "$cid" >"$CLUSTER_ID_FILE"
    if [[ "$(cat "$CLUSTER_ID_FILE")" != "$cid" ]]; then
      warn "$CLUSTER_ID_FILE ($(cat "$CLUSTER_ID_FILE")) differs from $meta ($cid); keeping the data's id"
      echo "$cid" >"$CLUSTER_ID_FILE"
    fi
    return 0
  fi
  [[ -s "$CLUSTER_ID_FILE" ]] || new_cluster_id >"$CLUSTER_ID_FILE"
  cid="$(cat "$CLUSTER_ID_FILE")"
  say "formatting $DATA (cluster id $cid, standalone controller) ..."
  if ! "$(java_bin)" -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool \
      format --standalone --cluster-id "$cid" --config "$PROPS" >"$LOGS/format.out" 2>&1; then
    cat "$LOGS/format.out" >&2
    die "StorageTool format failed"
  fi
}

clean_stale() {
  local pid lock holders h
  if [[ -f "$PID_FILE" ]]; then
    pid="$(head -n1 "$PID_FILE" 2>/dev/null || true)"
    if pid_alive "$pid"; then
      say "removing stale PID file: pid $pid is alive but is not this broker ($(pid_cmdline "$pid" | cut -c1-80))"
    else
      say "removing stale PID file: pid ${pid:-?} is not running (crashed or killed?)"
    fi
    rm -f "$PID_FILE"
  fi
  lock="$DATA/.lock"
  if [[ -e "$lock" ]]; then
    holders="$(file_holders "$lock")"
    if [[ -n "$holders" ]]; then
      for h in $holders; do
        die "data dir $DATA is locked by pid $h ($(pid_cmdline "$h" | cut -c1-120)); stop it first"
      done
    fi
    say "removing leftover lock $lock (no process holds it)"
    rm -f "$lock"
  fi
}

cmd_start() {
  external start && return 0
  local pid java t0 running_port
  t0=$(now_ms)
  cmd_install >/dev/null
  pid="$(our_pid)"
  if [[ -n "$pid" ]]; then
    [[ -f "$PID_FILE" && "$(head -n1 "$PID_FILE")" == "$pid" ]] || echo "$pid" >"$PID_FILE"
    running_port="$(sed -n 's#^listeners=PLAINTEXT://[^:]*:\([0-9]*\).*#\1#p' "$PROPS" 2>/dev/null || true)"
    if [[ -n "$running_port" && "$running_port" != "$PORT" ]]; then
      die "already running (pid $pid) on port $running_port, not $PORT: stop it first to change the port"
    fi
    if port_open "$HOST" "$PORT"; then
      say "already running (pid $pid) on $HOST:$PORT"
    else
      say "already running (pid $pid), $HOST:$PORT not answering yet (starting up?): use 'infra/kafka.sh wait'"
    fi
    return 0
  fi
  clean_stale
  require_port_free "$HOST" "$PORT" broker
  require_port_free "$HOST" "$CONTROLLER_PORT" controller
  render_properties
  format_storage
  java="$(java_bin)"

  local -a cds=()
  mapfile -t cds < <(cds_opts "$java")

  # where this run's log starts (the `wait` fallback looks for "Kafka Server started" after it)
  stat -c %s "$LOGS/server.log" 2>/dev/null >"$START_MARK" || echo 0 >"$START_MARK"
  [[ -f "$LOGS/server.out" ]] && mv -f "$LOGS/server.out" "$LOGS/server.out.prev"

  # own session/process group (setsid), immune to the caller's SIGHUP (nohup), no stdin
  # shellcheck disable=SC2086  # option strings are word-split on purpose
  (
    cd "$KAFKA_DIR"
    exec nohup setsid "$java" $HEAP_OPTS $PERF_OPTS "${cds[@]}" ${KAFKA_OPTS:-} \
      -Dkafka.logs.dir="$LOGS" -Dlog4j2.configurationFile="$LOG4J" \
      -cp "$LIBS/*" "$MAIN_CLASS" "$PROPS" >"$LOGS/server.out" 2>&1 </dev/null
  ) &
  pid=$!
  echo "$pid" >"$PID_FILE"

  # catch a JVM that dies at once (bad flag, Java too old); later failures are caught by `wait`
  for _ in 1 2 3 4 5; do
    sleep 0.1
    if ! is_ours "$pid"; then
      pid="$(our_pid)"  # setsid had to fork: find the JVM
      [[ -n "$pid" ]] && { echo "$pid" >"$PID_FILE"; continue; }
      rm -f "$PID_FILE"
      tail_logs 30 "$LOGS/server.out" "$LOGS/server.log"
      die "broker exited right after start (see $LOGS)"
    fi
  done
  say "started (pid $pid) on $HOST:$PORT, controller $HOST:$CONTROLLER_PORT, $(kafka_version), logs in $LOGS ($(elapsed_s "$t0")s)"
}

# Class data sharing: the second start records the loaded classes into an archive when the
# broker exits cleanly (`stop` then takes ~5 s longer, once); later starts map it and reach
# "ready" 2-3 s sooner. Not on the first start: a CI run that starts the broker once would only
# pay for the recording. Keyed by the jar set and the JVM; an unusable archive only makes the
# JVM start without it. KAFKA_CDS=0 switches it off.
cds_opts() {
  [[ "${KAFKA_CDS:-1}" == 1 ]] || return 0
  local java key jsa
  java="$(readlink -f "$1")"
  key="$(printf '%s %s %s' "$(cat "$STAMP")" "$java" "$(stat -c %Y "$java")" | sha256sum | cut -c1-16)"
  jsa="$KAFKA_DIR/cds/kafka-$key.jsa"
  mkdir -p "$KAFKA_DIR/cds"
  if [[ -s "$jsa" ]]; then
    echo "-XX:SharedArchiveFile=$jsa"
  elif [[ ! -e "$KAFKA_DIR/cds/started-once" ]]; then
    touch "$KAFKA_DIR/cds/started-once"
  else
    find "$KAFKA_DIR/cds" -name '*.jsa' ! -name "kafka-$key.jsa" -delete
    echo "-XX:ArchiveClassesAtExit=$jsa"
  fi
}

python_bin() {
  if [[ "${PYTHON:-}" == none ]]; then return 0  # log-based readiness only
  elif [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"
  elif command -v python3 >/dev/null 2>&1; then command -v python3
  fi
}

# Ready = the port accepts connections AND (the broker lists itself in a metadata answer when a
# Python is available, otherwise: the server log of this run says "Kafka Server started").
broker_ready() {
  local host=$1 port=$2 node=${3:-} py off
  port_open "$host" "$port" || return 1
  py="$(python_bin)"
  if [[ -n "$py" ]]; then
    "$py" "$INFRA_DIR/kafka/ready.py" "$host" "$port" ${node:+"$node"} >/dev/null 2>&1
    return
  fi
  [[ -n "$node" ]] || return 0
  off="$(cat "$START_MARK" 2>/dev/null || echo 0)"
  [[ "$(stat -c %s "$LOGS/server.log" 2>/dev/null || echo 0)" -ge "$off" ]] || off=0
  tail -c +"$((off + 1))" "$LOGS/server.log" 2>/dev/null | grep -q 'Kafka Server started'
}

cmd_wait() {
  local timeout="${1:-${KAFKA_WAIT_TIMEOUT:-60}}" t0 pid deadline
  t0=$(now_ms)
  deadline=$(( $(now_ms) + timeout * 1000 ))
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
    first="${first#*://}"
    until broker_ready "${first%:*}" "${first##*:}"; do
      (( $(now_ms) < deadline )) || die "external cluster $first not answering after ${timeout}s"
      sleep 0.5
    done
    say "external cluster $first answers ($(elapsed_s "$t0")s)"
    return 0
  fi
  while :; do
    pid="$(our_pid)"
    if [[ -z "$pid" ]]; then
      tail_logs 30 "$LOGS/server.log" "$LOGS/server.out"
      die "broker is not running (start it with 'infra/kafka.sh start')"
    fi
    if broker_ready "$HOST" "$PORT" "$NODE_ID"; then
      say "ready on $HOST:$PORT (pid $pid) after $(elapsed_s "$t0")s"
      return 0
    fi
    if (( $(now_ms) >= deadline )); then
      tail_logs 30 "$LOGS/server.log" "$LOGS/server.out"
      die "broker (pid $pid) not ready on $HOST:$PORT after ${timeout}s"
    fi
    sleep 0.3
  done
}

cmd_stop() {
  external stop && return 0
  local pid timeout="${KAFKA_STOP_TIMEOUT:-30}" t0 deadline
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    if [[ -f "$PID_FILE" ]]; then
      say "not running (removing stale PID file, pid $(head -n1 "$PID_FILE"))"
      rm -f "$PID_FILE"
    else
      say "not running"
    fi
    return 0
  fi
  t0=$(now_ms)
  deadline=$(( t0 + timeout * 1000 ))
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid" && (( $(now_ms) < deadline )); do sleep 0.2; done
  if pid_alive "$pid"; then
    warn "pid $pid still alive after ${timeout}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid) in $(elapsed_s "$t0")s"
}

cmd_status() {
  if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"; first="${first#*://}"
    if port_open "${first%:*}" "${first##*:}"; then
      say "external cluster $KAFKA_BOOTSTRAP_SERVERS: answering"; return 0
    fi
    say "external cluster $KAFKA_BOOTSTRAP_SERVERS: not answering"; return 3
  fi
  local pid rss
  pid="$(our_pid)"
  if [[ -z "$pid" ]]; then
    if [[ -f "$PID_FILE" ]]; then say "stopped (stale PID file: pid $(head -n1 "$PID_FILE") is gone or not this broker)"
    else say "stopped"; fi
    return 3
  fi
  rss="$(awk '/^VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || true)"
  if port_open "$HOST" "$PORT"; then
    say "running (pid $pid) on $HOST:$PORT, controller $HOST:$CONTROLLER_PORT, RSS $rss"
  else
    say "running (pid $pid), $HOST:$PORT not answering yet, RSS $rss"
  fi
}

cmd_tool() {
  [[ $# -ge 1 ]] || die "usage: infra/kafka.sh tool CLASS|topics|console-producer|console-consumer|consumer-groups [ARGS...]"
  local cls=$1; shift
  case "$cls" in
    topics) cls=org.apache.kafka.tools.TopicCommand ;;
    console-producer) cls=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    storage) cls=kafka.tools.StorageTool ;;
  esac
  libs_current || cmd_install >&2
  # shellcheck disable=SC2086
  exec "$(java_bin)" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${KAFKA_TOOL_OPTS:-} \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$LIBS/*" "$cls" "$@"
}

cmd_reset() {
  external reset && return 0
  cmd_stop
  rm -rf "$DATA" "$CLUSTER_ID_FILE" "$PROPS" "$START_MARK"
  say "data deleted ($DATA); next start formats a new cluster"
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wait) shift; cmd_wait "$@" ;;
  tool) shift; cmd_tool "$@" ;;
  reset) cmd_reset ;;
  *) usage ;;
esac
