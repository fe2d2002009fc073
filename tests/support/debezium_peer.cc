#include "support/debezium_peer.h"

#include <signal.h>

namespace tidemark::test {

std::unique_ptr<Process> startDebeziumPeer(const DebeziumPeerOptions& o) {
  std::vector<std::string> argv = {"bash", std::string(TIDEMARK_SOURCE_DIR) + "/scripts/debezium-peer.sh",
                                   "run", "--out", o.out.string(), "--timeout",
                                   std::to_string(o.timeout.count())};
  if (o.stopAtLsn) {
    argv.insert(argv.end(), {"--stop-at-lsn", *o.stopAtLsn});
  }
  if (o.stopAfter) {
    argv.insert(argv.end(), {"--stop-after", std::to_string(*o.stopAfter)});
  }
  std::map<std::string, std::string> props = {
      {"database.hostname", o.host},
      {"database.port", std::to_string(o.port)},
      {"database.user", o.user},
      {"database.password", ""},
      {"database.dbname", o.database},
      {"topic.prefix", o.topicPrefix},
      {"slot.name", o.slot},
      {"publication.name", o.publication},
  };
  for (const auto& [k, v] : o.properties) props[k] = v;
  for (const auto& [k, v] : props) argv.push_back(k + "=" + v);
  return std::make_unique<Process>(std::move(argv));
}

DebeziumPeerResult runDebeziumPeer(const DebeziumPeerOptions& options) {
  auto p = startDebeziumPeer(options);
  DebeziumPeerResult r;
  // The timeout is the peer's own; the margin covers a first build and the JVM's start.
  r.exitCode = p->waitExit(options.timeout + std::chrono::seconds(240));
  if (!r.exitCode) {
    p->signal(SIGKILL);
    p->waitExit(std::chrono::seconds(10));
  }
  r.figures = p->stdoutText();
  r.description = p->describe();
  if (r.exitCode == kDebeziumPeerMissingTools) {
    r.description = "the Debezium peer cannot run on this machine: " + p->stderrText() +
                    "\nrun scripts/install-deps.sh (or `make test`, which runs it)";
  }
  return r;
}

}  // namespace tidemark::test
