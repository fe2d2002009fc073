// End-to-end tests with a PostgreSQL destination: a second throwaway server, shared by the
// tests of a binary, with a database for each test named as its source database (made when
// the test first uses it). What the destination holds is compared with the source's rows, and
// by `tidemark verify`.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/pg_cluster.h"
#include "support/pipeline_fixture.h"

namespace tidemark::test {

/// The destination server of this test binary, started when first asked for.
PgCluster& destination();

class PgDestinationTest : public PgPipelineTest {
 protected:
  /// The test's destination database, made on first use.
  std::string destinationDsn();
  PgRows dest(const std::string& statement);
  std::string destScalar(const std::string& statement);
  /// As destScalar, but empty while the statement fails (the table is not there yet).
  std::string destPoll(const std::string& statement);

  /// A sink item for the sinks: section.
  std::string sink(const std::string& name, const std::string& mode, const std::string& extra = "");

  /// Every row of `table` as text, ordered by its text: what the source and the destination
  /// compare by.
  static std::string rowsOf(PgCluster& server, const std::string& db, const std::string& table,
                            const std::string& columns = "*");
  /// `tidemark verify` (the pipeline streaming meanwhile) says every table is equal.
  ::testing::AssertionResult verifiedEqual(const std::filesystem::path& config);
  /// The destination's `table` has the source's rows (`columns` of them).
  ::testing::AssertionResult sameAtDestination(const std::string& table, const std::string& columns = "*");

 private:
  bool created_ = false;
};

}  // namespace tidemark::test
