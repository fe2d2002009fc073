#include "support/destination_fixture.h"

#include <signal.h>

#include <chrono>
#include <memory>

#include "support/assertions.h"

namespace tidemark::test {

using namespace std::chrono_literals;

PgCluster& destination() {
  static std::unique_ptr<PgCluster> cluster = [] {
    auto c = std::make_unique<PgCluster>();
    c->start();
    return c;
  }();
  return *cluster;
}

std::string PgDestinationTest::destinationDsn() {
  if (!created_) {
    destination().createDatabase(db());
    created_ = true;
  }
  return destination().dsn(db());
}

PgRows PgDestinationTest::dest(const std::string& statement) {
  destinationDsn();
  return destination().exec(db(), statement);
}

std::string PgDestinationTest::destScalar(const std::string& statement) {
  destinationDsn();
  return destination().scalar(db(), statement);
}

std::string PgDestinationTest::destPoll(const std::string& statement) {
  try {
    return destScalar(statement);
  } catch (const std::exception&) {
    return "";
  }
}

std::string PgDestinationTest::sink(const std::string& name, const std::string& mode, const std::string& extra) {
  std::string yaml = "- name: " + name + "\n  kind: postgres\n  dsn: \"" + destinationDsn() + "\"\n  mode: " + mode +
                     "\n";
  if (mode == "append") yaml += "  schema: " + name + "\n";
  return yaml + extra;
}

std::string PgDestinationTest::rowsOf(PgCluster& server, const std::string& db, const std::string& table,
                                      const std::string& columns) {
  // The alias is one no test table has as a column name: a column of that name would win.
  const std::string row = columns == "*" ? "whole_row::text" : "(ROW(" + columns + "))::text";
  return server.scalar(db, "SELECT coalesce(string_agg(r, E'\\n' ORDER BY r), '') FROM (SELECT " + row +
                               " AS r FROM " + table + " whole_row) s");
}

::testing::AssertionResult PgDestinationTest::verifiedEqual(const std::filesystem::path& config) {
  std::unique_ptr<Process> run;
  startStreaming(config, run);
  RunResult v = runTidemark({"verify", "-c", config.string(), "--chunk-rows", "5000"});
  run->signal(SIGTERM);
  run->waitExit(30s);
  if (v.exitCode == 0 && contains(v.out, "every table is equal")) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << v.description;
}

::testing::AssertionResult PgDestinationTest::sameAtDestination(const std::string& table, const std::string& columns) {
  destinationDsn();
  const std::string src = rowsOf(pg(), db(), table, columns);
  const std::string dst = rowsOf(destination(), db(), table, columns);
  if (src == dst) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << table << " differs.\nsource:\n"
                                       << src.substr(0, 3000) << "\ndestination:\n"
                                       << dst.substr(0, 3000);
}

}  // namespace tidemark::test
