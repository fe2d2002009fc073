// PostgreSQL's own view of a change stream: a sibling slot with the test_decoding plugin,
// created beside a pipeline's slot, whose text output is parsed into changes. Tests compare
// tidemark's events with it: what the server decoded is what must come out, no more, no less.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/pg_cluster.h"

namespace tidemark::test {

/// One column as test_decoding prints it: `name[type]:value`.
struct DecodedColumn {
  std::string name;
  std::string type;
  std::optional<std::string> value;  // the text form; nothing for null
  bool unchanged_toast = false;      // unchanged-toast-datum: not sent
};

/// One row change: `table <schema>.<table>: <OP>: [old-key: ...] [new-tuple: ...]`.
struct DecodedChange {
  std::string table;  // "schema.table", unquoted
  std::string op;     // INSERT, UPDATE, DELETE, TRUNCATE
  std::vector<DecodedColumn> old_tuple;  // old-key: the key, or the old row under FULL
  std::vector<DecodedColumn> new_tuple;

  /// The column of `tuple` called `name`, or nullptr.
  static const DecodedColumn* find(const std::vector<DecodedColumn>& tuple, const std::string& name);
};

/// Parses one line of test_decoding output; nothing for BEGIN, COMMIT and messages. Throws
/// std::runtime_error on a row line it cannot read.
std::optional<DecodedChange> parseTestDecodingLine(const std::string& line);

/// The text a value of an event has in test_decoding's output: strings as they are, numbers as
/// written, true/false; nothing for null. For comparing simple columns (text, integers).
std::optional<std::string> eventValueText(const nlohmann::json& value);

/// Whether tidemark's events of one table say what the server decoded for it, in order:
/// INSERT a `c`, DELETE a `d`, UPDATE a `u`, or a `d` then a `c` when a key column changed (an
/// unchanged TOASTed key value is no change); `after` holds the new tuple's values (unchanged
/// TOASTed ones aside), a `d`'s `before` the old key's. Values are compared as text
/// (eventValueText), so keep to text and integer columns.
::testing::AssertionResult sameChanges(const std::vector<DecodedChange>& server,
                                       const std::vector<nlohmann::json>& events,
                                       const std::vector<std::string>& key_columns);

class TestDecodingSlot {
 public:
  /// Creates slot `name` (test_decoding) in `db`: it decodes what is committed from now on.
  TestDecodingSlot(PgCluster& pg, std::string db, std::string name);

  /// Everything committed since the last call (pg_logical_slot_get_changes: the slot hands
  /// each change out once), row changes only, of `tables` ("schema.table") when given, read as
  /// UTF-8 whatever the database's encoding. tidemark's own heartbeat rows are among the rest.
  std::vector<DecodedChange> changes(const std::vector<std::string>& tables = {});

 private:
  PgCluster& pg_;
  std::string db_;
  std::string name_;
};

}  // namespace tidemark::test
