// The PostgreSQL destination: the captured tables, kept in a PostgreSQL database.
//
// Exactly once. The sink keeps its place in the destination itself: each destination
// transaction applies whole source transactions (many of them, batched) and writes the
// change-log cursor after them into tidemark.sink_progress in the same transaction. A crash at
// any moment leaves the destination at a transaction's end with the cursor that says which;
// recover() reads it, and the worker reads on from there (core/sink.h). Nothing is lost and
// nothing applied twice, whatever the state store says.
//
// Modes:
//   upsert  one row per key, as the source has it. Within a batch the changes of a key are
//           folded into its last state (a delete, or the row with every column it set), then
//           applied per table: new rows by COPY, deletes by key, rows by INSERT ... ON CONFLICT
//           (key) DO UPDATE of the columns they carry, a few as one statement, more through
//           COPY into a temporary table. A column the source did not resend (an unchanged
//           TOASTed value) is left out of the update, never written as Debezium's placeholder.
//           soft_delete: a delete sets __deleted.
//
// Values: the source's own text of each row when the event carries it (a PostgreSQL source:
// core/text_row.h), written as it is; otherwise Debezium's JSON turned back into PostgreSQL's
// text forms (text_form.h).
//   append  a row per change, COPY'd into the table, with __op, __lsn, __commit_ts, __txid and
//           __seq (the change's place in its source transaction).
//
// Tables are created from the table-schema records of the change log (same types, same primary
// key) when missing; a column the source added is added before the first row that carries it;
// a dropped one stays and is written NULL; a changed type stops the sink, naming both types.
//
// Errors: a lost connection, a serialization failure, a deadlock, a lock timeout, a full disk
// are retriable. A constraint or data error (SQLSTATE classes 22, 23) is one row's: the sink
// throws Error(Poison) and, read again from its cursor, applies each change under a savepoint
// until the next commit; the change that fails goes to the dead letter queue with its error
// and the rest is applied. A missing privilege or an unknown type stops the sink with the fix.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/json_reader.h"
#include "base/log.h"
#include "config/config.h"
#include "core/dead_letters.h"
#include "core/sink.h"
#include "postgres/connection.h"
#include "sink/postgres/text_form.h"

namespace tidemark::sinks {

class PostgresSink final : public Sink {
 public:
  /// `dead_letters` may be null (rejected rows then fail the sink).
  PostgresSink(const config::SinkConfig& cfg, uint64_t max_dead_letters, core::DeadLetters* dead_letters,
               Logger logger);
  ~PostgresSink() override;

  const std::string& name() const override { return cfg_.name; }
  std::optional<uint64_t> recover(const std::optional<std::string>& checkpoint, RecoverMode mode) override;
  void tableSchema(std::string_view topic, std::string_view version, std::string_view json) override;
  void write(const core::Event& event) override;
  void markTransactionEnd(uint64_t cursor) override;
  void rollbackToMark() override;
  void rollbackTo(const std::string& checkpoint) override;
  void flush() override;
  std::string checkpoint() const override { return std::to_string(durable_cursor_); }
  uint64_t pendingBytes() const override { return pending_bytes_; }

  /// Applies dead letters again, in one destination transaction, each unless a later change of
  /// its key was applied since (its state then becomes "superseded"). For `tidemark dlq retry`.
  struct RetryResult {
    std::vector<int64_t> applied;
    std::vector<std::pair<int64_t, std::string>> superseded;  // id, why
    std::vector<std::pair<int64_t, std::string>> failed;      // id, error
  };
  RetryResult retryDeadLetters(const std::vector<core::DeadLetter>& letters);

  /// The destination table of a source schema and table, quoted.
  std::string targetTable(const std::string& schema, const std::string& table) const;

  struct Target;
  struct Column {
    std::string name;
    std::string quoted;
    std::string type;  // as the source declares it (format_type)
    pgtext::Form form;
    bool key = false;
  };
  /// One version of a table's schema, as its record in the change log says.
  struct Schema {
    std::string topic;
    std::string version;
    std::string schema;
    std::string table;
    std::vector<Column> columns;
    std::vector<size_t> key;
    std::string json;  // the record
    bool postgres_text = false;  // its events carry PostgreSQL's own text of their rows
    // Where each column is in the target, as of the target's epoch.
    mutable std::vector<size_t> to_target;
    mutable uint64_t mapped_epoch = 0;
    // Its target, as last checked against the destination, at the target's epoch then.
    mutable Target* target = nullptr;
    mutable uint64_t target_epoch = 0;
  };
  /// A destination table: every column it has that the sink writes (the union of the versions
  /// seen), in the table's order.
  struct Target {
    std::string qualified;
    std::vector<Column> columns;
    std::vector<size_t> key;
    std::map<std::string, size_t> by_name;
    std::string stage;          // the temporary table rows pass through; empty until made
    size_t stage_columns = 0;   // columns it was made with
    uint64_t epoch = 1;         // changes whenever `columns` does
  };
  /// One change, its values as PostgreSQL text, in the order of its target's columns.
  struct Change {
    char op = 'c';          // c, u, d, r, t
    Target* target = nullptr;
    const Schema* schema = nullptr;
    std::vector<std::optional<std::string>> values;
    std::vector<bool> present;  // false: leave the stored value (not resent, or a key-only image)
    std::string key;            // the event's key: identifies the row in a batch
    /// The key's first change in its batch was an insert: the row was not at the destination
    /// before the batch, as far as the source knows, so it can be COPY'd in as it is.
    bool fresh = false;
    /// soft_delete: the row, deleted after it was written in this batch: written with
    /// __deleted set, so that it is there, marked, as it would be had the batch been split.
    bool soft_deleted = false;
    // append mode
    std::string lsn;
    std::string commit_ts;
    std::string txid;
    uint64_t seq = 0;
    // for the dead letter queue
    uint64_t offset = 0;
    std::string event_value;
    std::string unchanged;
    std::string topic;
    size_t bytes = 0;
  };

 private:
  struct Batch;

  void connect();
  void disconnect();
  void begin();
  void exec(const std::string& sql, std::string_view what);
  /// COPY ... FROM STDIN with `data`. With `unique_ok`, a unique violation returns false
  /// instead of throwing (the transaction is then aborted up to the caller's savepoint).
  bool copyIn(const std::string& sql, const std::string& data, std::string_view what, bool unique_ok = false);
  /// Classifies a failure of a statement that wrote rows: constraint and data errors are the
  /// row's (Poison), privilege and definition errors are the configuration's.
  [[noreturn]] void rethrow(const pg::ServerError& e, bool rows);

  /// The target of `schema`'s rows, with every column the schema has, created or altered
  /// at the destination when it is not (checkTarget), or as checked last.
  Target& ensureTarget(const Schema& schema);
  Target& checkTarget(const Schema& schema);
  std::optional<Change> parse(const core::Event& event);
  void fold(Batch& batch, Change&& change);
  void apply(Batch& batch);
  void applyUpsert(Target& target, std::vector<Change>& slots);
  void applyAppend(Target& target, const std::vector<Change>& rows);
  void applyTruncate(Target& target);
  void applyOne(Change& change);
  void applyIsolated(std::vector<Change>& changes);
  void stageFor(Target& target);
  void noteKeysApplied(const std::vector<Change>& changes);
  /// Puts a rejected change in the dead letter queue; throws when the queue is full.
  void setAside(const Change& change, const Error& error);
  /// Drops everything not committed; the next write starts a new destination transaction.
  void reset();

  config::SinkConfig cfg_;
  uint64_t max_dead_letters_;
  core::DeadLetters* dead_letters_;
  Logger logger_;
  std::optional<pg::Connection> conn_;

  std::unordered_map<std::string, Schema> schemas_;         // by version
  const Schema* last_schema_ = nullptr;                     // the last one looked up
  std::map<std::string, std::unique_ptr<Target>> targets_;  // by qualified name; checked in this txn
  std::unique_ptr<Batch> batch_;  // whole transactions, not yet sent
  std::vector<Change> open_;      // the transaction being read
  uint64_t open_bytes_ = 0;
  uint64_t seq_ = 0;              // changes of the open transaction so far
  bool in_transaction_ = false;   // a destination transaction is open
  bool savepoint_ = false;        // part of the open source transaction was sent, after SAVEPOINT
  bool isolating_ = false;        // apply change by change, rejected ones to the dead letters
  bool poisoned_ = false;         // a batch was rejected: isolate from the next start on
  uint64_t marked_cursor_ = 0;    // after the last transaction marked
  uint64_t durable_cursor_ = 0;   // committed in the destination
  uint64_t pending_bytes_ = 0;
  uint64_t stage_seq_ = 0;
  /// Keys (target + key) with a pending dead letter, and the offset of that letter: a later
  /// change of one is recorded in tidemark.sink_superseded, so that a retry does not
  /// overwrite it.
  std::map<std::pair<std::string, std::string>, uint64_t> dead_keys_;
  // Scratch for parse(), kept to spare allocations.
  struct Field {
    std::string key;  // unescaped, when the raw key has escapes
    std::string_view raw_key;
    bool escaped = false;
    jsonr::Value value;
  };
  std::vector<Field> fields_;
  std::vector<bool> unchanged_;
};

}  // namespace tidemark::sinks
