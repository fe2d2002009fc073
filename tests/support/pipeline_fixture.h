// The fixture of the end-to-end tests: each test gets its own database on the shared
// PostgreSQL, its own temp dir for config, state and sink output, and runs the real
// `tidemark` binary (TIDEMARK_BINARY) against them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pg_cluster.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace tidemark::test {

/// The parts of a pipeline file the tests vary; writeConfig renders the YAML.
///   writeConfig(TidemarkConfig({"public.orders"}).withKeys())
struct TidemarkConfig {
  explicit TidemarkConfig(std::vector<std::string> captured) : tables(std::move(captured)) {}

  TidemarkConfig& withKeys() { withKey = true; return *this; }
  TidemarkConfig& withUser(std::string u) { user = std::move(u); return *this; }
  TidemarkConfig& withDsnPassword(std::string p) { dsnPassword = std::move(p); return *this; }
  TidemarkConfig& withPassword(std::string p) { password = std::move(p); return *this; }
  TidemarkConfig& withPasswordFile(std::string p) { passwordFile = std::move(p); return *this; }
  TidemarkConfig& withDsn(std::string d) { dsn = std::move(d); return *this; }
  TidemarkConfig& withName(std::string n) { name = std::move(n); return *this; }
  /// Lines of the `heartbeat:` section, unindented: "interval: 1s\nmode: message".
  TidemarkConfig& withHeartbeat(std::string yamlLines) { heartbeat = std::move(yamlLines); return *this; }
  /// More lines of the `source:` section, unindented: "read_only: true\nstatus_interval: 1s".
  TidemarkConfig& withSourceExtra(std::string yamlLines) { sourceExtra = std::move(yamlLines); return *this; }
  /// The items of `sinks:` instead of the one jsonl sink, unindented:
  /// "- name: out\n  kind: stdout".
  TidemarkConfig& withSinks(std::string yamlLines) { sinks = std::move(yamlLines); return *this; }
  /// Lines of the `http:` section, unindented, instead of an endpoint on a free port.
  TidemarkConfig& withHttp(std::string yamlLines) { http = std::move(yamlLines); return *this; }
  /// More top-level lines: "topic_prefix: x".
  TidemarkConfig& withTopLevel(std::string yamlLines) { topLevel = std::move(yamlLines); return *this; }
  /// source.snapshot.mode. Tests stream only (never) unless they say otherwise: what they
  /// write before initPipeline() is not captured.
  TidemarkConfig& withSnapshot(std::string mode, std::optional<int> chunkRows = std::nullopt) {
    snapshot = std::move(mode);
    snapshotChunkRows = chunkRows;
    return *this;
  }

  std::string name = "t1";
  std::string snapshot = "never";
  std::optional<int> snapshotChunkRows;
  std::vector<std::string> tables;         // "public.orders", ...
  std::string user = "postgres";
  std::optional<std::string> dsnPassword;  // appended to the dsn as password=...
  std::optional<std::string> password;     // the source.password setting
  std::optional<std::string> passwordFile; // the source.password_file setting
  std::optional<std::string> dsn;          // instead of this test's database on the shared server
  bool withKey = false;
  std::string flushInterval = "100ms";
  std::optional<std::string> heartbeat;    // the heartbeat section; none when empty
  std::optional<std::string> sourceExtra;  // appended to the source section
  std::optional<std::string> sinks;        // replaces the jsonl sink
  // Test binaries run side by side: every endpoint takes a free port.
  std::string http = "listen: 127.0.0.1:0";
  std::optional<std::string> topLevel;
};

/// What `tidemark status -c FILE --json` said.
struct StatusResult {
  std::optional<int> exitCode;
  std::optional<nlohmann::json> json;  // when stdout was one JSON document
  std::string description;             // command, exit and output, for assertion messages
};

/// The value at a dotted path ("heartbeat.age_ms") of `doc`; nothing when a key on the way is
/// missing (a JSON null is returned as null).
std::optional<nlohmann::json> jsonAt(const nlohmann::json& doc, const std::string& dottedPath);
inline bool isNumber(const std::optional<nlohmann::json>& v) { return v && v->is_number(); }
inline bool isNonNull(const std::optional<nlohmann::json>& v) { return v && !v->is_null(); }
/// A status reading and the trail of readings before it, for assertion messages.
std::string describeStatus(const StatusResult& s, const std::string& trail = "");

/// How a tidemark run ended. `exitCode` is empty when it did not end within the deadline
/// (it was then killed).
struct RunResult {
  std::optional<int> exitCode;
  std::string out;
  std::string err;
  std::optional<long> maxRssKiB;
  std::string description;  // command, exit and output tails, for assertion messages
};

/// "16/B374D848" -> its 64-bit value. Throws std::invalid_argument on anything else.
uint64_t parseLsn(const std::string& text);

/// The number of complete (newline-terminated) lines in `file`; 0 when it is missing.
size_t countLines(const std::filesystem::path& file);

/// Calls `fn` with every complete line of `file`, parsed, without holding the whole file in
/// memory (the large-transaction test writes a million lines).
void forEachJsonLine(const std::filesystem::path& file,
                     const std::function<void(const nlohmann::json&)>& fn);

/// The path of the tidemark binary under test.
std::string tidemarkBinary();

class PgPipelineTest : public ::testing::Test {
 protected:
  static constexpr std::chrono::seconds kRunDeadline{120};

  void SetUp() override;
  void TearDown() override;

  PgCluster& pg() { return *pg_; }
  const std::string& db() const { return db_; }
  const TempDir& tmp() const { return *tmp_; }

  PgRows sql(const std::string& statement) { return pg_->exec(db_, statement); }
  /// ALTER SYSTEM SET name = value and reload; TearDown resets it before the next test runs.
  void setSystem(const std::string& name, const std::string& value);
  std::string scalar(const std::string& statement) { return pg_->scalar(db_, statement); }
  PgConnection connect() { return pg_->connect(db_); }
  /// pg_current_wal_lsn(): the --until-lsn that covers everything committed so far.
  std::string currentLsn() { return scalar("SELECT pg_current_wal_lsn()"); }

  /// Names the written configs use. The slot name is unique in the cluster.
  const std::string& slot() const { return slot_; }
  static std::string publication() { return "t1_pub"; }
  std::filesystem::path outDir() const { return tmp_->path() / "out"; }
  std::filesystem::path stateDir() const { return tmp_->path() / "state"; }

  std::filesystem::path writeConfig(const TidemarkConfig& config,
                                    const std::string& file = "tidemark.yaml");
  std::filesystem::path writeRawConfig(const std::string& yaml,
                                       const std::string& file = "tidemark.yaml");

  /// A first run up to the current LSN, which creates the slot and the publication: only
  /// what is committed after the slot exists is captured, so tests call this before writing
  /// the data they expect to see. Use inside ASSERT_NO_FATAL_FAILURE.
  void initPipeline(const std::filesystem::path& config);

  /// Sets an environment variable for every tidemark this test starts from now on.
  void setTidemarkEnv(std::string name, std::string value) {
    tidemark_env_.emplace_back(std::move(name), std::move(value));
  }
  /// Forgets what setTidemarkEnv set.
  void clearTidemarkEnv() { tidemark_env_.clear(); }
  /// Starts `tidemark <args...>`.
  std::unique_ptr<Process> startTidemark(const std::vector<std::string>& args);
  /// Starts `tidemark run -c config [--until-lsn lsn]`.
  std::unique_ptr<Process> startRun(const std::filesystem::path& config,
                                    const std::optional<std::string>& untilLsn = std::nullopt);
  /// Runs `tidemark <args...>` to its end, or kills it after `deadline`.
  RunResult runTidemark(const std::vector<std::string>& args,
                        std::chrono::milliseconds deadline = kRunDeadline);
  /// Runs `tidemark run -c config --until-lsn lsn` to its end.
  RunResult runUntil(const std::filesystem::path& config, const std::string& untilLsn,
                     std::chrono::milliseconds deadline = kRunDeadline);
  /// Waits for a started process and collects how it ended; kills it after `deadline`.
  static RunResult finish(Process& process, std::chrono::milliseconds deadline = kRunDeadline);

  /// The sink file of `schema.table` (pipeline `name`), and of the messages topic.
  std::filesystem::path topicFile(const std::string& table, const std::string& name = "t1") const;
  std::filesystem::path messageFile(const std::string& name = "t1") const;
  /// The Layer 1 heartbeat topic's file: `__debezium-heartbeat.<prefix>.jsonl`.
  std::filesystem::path heartbeatFile(const std::string& prefix = "t1") const;

  /// Starts a long run (no --until-lsn) and waits until it streams from the slot.
  void startStreaming(const std::filesystem::path& config, std::unique_ptr<Process>& p);
  /// `times` runs of `config`, each killed with SIGKILL at a random moment 300 to 2500 ms after
  /// its start (drawn from `seed`, which failure messages name). Use inside ASSERT_NO_FATAL_FAILURE.
  void killRunsAtRandomMoments(const std::filesystem::path& config, int times, unsigned seed);

  /// Runs `tidemark status -c config --json`.
  StatusResult status(const std::filesystem::path& config,
                      std::chrono::milliseconds deadline = std::chrono::seconds(30));
  /// Runs `status` every `step` until `pred` holds for a reading (-> true) or `deadline` has
  /// passed (-> false). `last` gets the last reading; `trail` a line per reading that differs
  /// from the one before (state, reason, exit code), for assertion messages.
  bool statusEventually(const std::filesystem::path& config,
                        const std::function<bool(const StatusResult&)>& pred,
                        std::chrono::milliseconds deadline, StatusResult* last = nullptr,
                        std::string* trail = nullptr,
                        std::chrono::milliseconds step = std::chrono::milliseconds(100));

  /// The value envelopes written for `table` ("public.orders"), in file order. Lines of a
  /// with_key sink are unwrapped to their value. Tombstones (a null value after a delete, a
  /// Kafka compaction device) are left out: these tests are about change events.
  std::vector<nlohmann::json> events(const std::string& table) const;
  /// Every line of every topic file, in file order per topic.
  std::vector<nlohmann::json> allEvents() const;

  /// Runs `tidemark check -c config --json` and returns the entry of check `id` (a null, and a
  /// test failure, when there is none).
  nlohmann::json checkEntry(const std::filesystem::path& config, const std::string& id);

  /// pg_replication_slots for this test's slot.
  bool slotExists();
  bool slotActive();
  std::optional<std::string> slotConfirmedFlushLsn();

 private:
  PgCluster* pg_ = nullptr;
  std::string db_;
  std::string slot_;
  std::unique_ptr<TempDir> tmp_;
  std::vector<std::string> changed_settings_;
  std::vector<std::pair<std::string, std::string>> tidemark_env_;
};

}  // namespace tidemark::test
