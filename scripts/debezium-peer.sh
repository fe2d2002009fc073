#!/usr/bin/env bash
# The Debezium peer (bench/peers/debezium): Debezium's PostgreSQL connector in its embedded
# engine, which the compatibility suite and the benchmark run beside tidemark.
#
#   scripts/debezium-peer.sh build        builds the jar once and prints its path
#   scripts/debezium-peer.sh run ARGS...  builds it if needed, then runs it with ARGS
#                                         (see bench/peers/debezium/src/.../DebeziumPeer.java)
#
# The first build resolves Debezium 3.6.1.Final from Maven Central into Maven's cache
# (~/.m2, or MAVEN_REPO); later builds and every run need no network. The jar is rebuilt only
# when pom.xml or the Java source is newer than it. The JVM runs with its defaults, as Kafka
# Connect would; DEBEZIUM_JAVA_OPTS adds options. Exit 3: no Java 17 or Maven on this machine.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
peer="$here/bench/peers/debezium"
jar="$peer/target/debezium-peer.jar"

need_tools() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(java)
  command -v mvn >/dev/null 2>&1 || missing+=(mvn)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "debezium-peer: ${missing[*]} not found. The Debezium peer needs Java 17 and Maven:" \
      "apt-get install openjdk-17-jdk-headless maven (scripts/install-deps.sh installs them)" >&2
    exit 3
  fi
  local version
  version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  if [ -n "$version" ] && [ "$version" -lt 17 ]; then
    echo "debezium-peer: java is version $version; Debezium 3.6 needs 17 or later:" \
      "apt-get install openjdk-17-jdk-headless" >&2
    exit 3
  fi
}

stale() {
  [ ! -s "$jar" ] && return 0
  [ -n "$(find "$peer/pom.xml" "$peer/src" -newer "$jar" -print -quit)" ]
}

build() {
  need_tools
  stale || return 0
  local repo=()
  [ -n "${MAVEN_REPO:-}" ] && repo=("-Dmaven.repo.local=$MAVEN_REPO")
  # One build at a time: the suite and the benchmark may start together.
  exec 9>"$peer/.build.lock"
  flock 9
  stale || return 0
  echo "debezium-peer: building $jar (the first build downloads Debezium 3.6.1.Final from Maven Central)" >&2
  local log="$peer/target/build.log"
  mkdir -p "$peer/target"
  if ! (cd "$peer" && mvn -q -B "${repo[@]}" package) >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "debezium-peer: the build failed (log: $log). Offline? The first build needs Maven Central." >&2
    exit 1
  fi
}

case "${1:-}" in
  build)
    build
    echo "$jar"
    ;;
  run)
    shift
    build
    # shellcheck disable=SC2086  # options are words
    exec java ${DEBEZIUM_JAVA_OPTS:-} -jar "$jar" "$@"
    ;;
  *)
    echo "usage: scripts/debezium-peer.sh build | run ARGS..." >&2
    exit 1
    ;;
esac
