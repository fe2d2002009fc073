// tidemark and Debezium's PostgreSQL connector read one workload from one server, each from a
// slot of its own, and their events are compared field by field (envelope_diff.h). What
// differs must be exactly what docs/COMPATIBILITY.md lists: a new difference fails the suite,
// and so does a listed one that went away (then the list is out of date).
//
// Debezium runs as the peer of bench/peers/debezium (scripts/debezium-peer.sh), with the
// settings tidemark's renderings follow (decimal string, binary base64, interval string) and
// Debezium's defaults for everything else.

#include <signal.h>

#include <fstream>
#include <future>
#include <sstream>

#include <gtest/gtest.h>

#include "compat/envelope_diff.h"
#include "support/debezium_peer.h"
#include "support/jsonl.h"
#include "support/pipeline_fixture.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::filesystem::path kSourceDir = TIDEMARK_SOURCE_DIR;

std::string readFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The statements of a workload file, each ending with a semicolon at the end of a line, run
// one by one: each commits on its own unless it is inside BEGIN ... COMMIT. (Sent as one
// query string they would all be one transaction.)
void runStatements(PgConnection& conn, const std::filesystem::path& file) {
  std::istringstream in(readFile(file));
  std::string statement;
  for (std::string line; std::getline(in, line);) {
    if (statement.empty() && (line.empty() || line.rfind("--", 0) == 0)) continue;
    statement += line + "\n";
    if (!line.empty() && line.back() == ';') {
      try {
        conn.exec(statement);
      } catch (const std::exception& e) {
        throw std::runtime_error(file.filename().string() + ": " + e.what() + "\nin: " + statement);
      }
      statement.clear();
    }
  }
  if (statement.find_first_not_of(" \n") != std::string::npos) {
    throw std::runtime_error(file.filename().string() + " ends without a semicolon: " + statement);
  }
}

// Fields that differ by nature, and how some values are compared: the one place that says
// what the suite does not hold against either reader.
CompareRules compareRules(const std::string& prefix) {
  CompareRules rules;
  rules.prefix = prefix;
  rules.ignoredValuePaths = {
      "source.version",  // each product's own version
      "ts_ms",           // when the reader processed the event (ts_us, ts_ns: the same, finer)
      "ts_us",
      "ts_ns",
  };
  // hstore as a JSON object: Debezium's member order is its hash map's.
  rules.jsonTextColumns = {"public.types.c_hstore"};
  // Heartbeats carry each reader's own clock.
  rules.shapeOnlyTopics = {"__debezium-heartbeat." + prefix};
  return rules;
}

std::string listing(const std::map<std::string, std::string>& differences) {
  std::string out;
  for (const auto& [id, example] : differences) out += "  `" + id + "`: " + example + "\n";
  return out;
}

class CompatTest : public PgPipelineTest {
 protected:
  // A pipeline `name` over `publication` with slot `slot`, keys and values in its output
  // files, its state and output under tmp/`dir`.
  std::filesystem::path pipeline(const std::string& dir_name, const std::string& name, const std::string& slot,
                                 const std::string& publication, const std::string& tables,
                                 const std::string& heartbeat = "mode: \"off\"\nevents: false\n",
                                 const std::string& snapshot = "") {
    const auto dir = tmp().path() / dir_name;
    std::ostringstream y;
    y << "name: " << name << "\n"
      << "state_dir: " << (dir / "state").string() << "\n"
      << "source:\n"
      << "  kind: postgres\n"
      << "  dsn: \"" << pg().dsn(db()) << "\"\n"
      << "  slot: " << slot << "\n"
      << "  publication: " << publication << "\n"
      << "  create_publication: false\n"
      << "  tables: " << tables << "\n"
      << snapshot
      << "sinks:\n"
      << "  - name: files\n"
      << "    kind: jsonl\n"
      << "    path: " << (dir / "out").string() << "\n"
      << "    with_key: true\n"
      << "delivery:\n"
      << "  flush_interval: 100ms\n"
      << "heartbeat:\n";
    std::istringstream lines(heartbeat);
    for (std::string line; std::getline(lines, line);) y << "  " << line << "\n";
    y << "http:\n  listen: \"off\"\n";
    return writeRawConfig(y.str(), dir_name + ".yaml");
  }

  std::filesystem::path outOf(const std::string& dir_name) const { return tmp().path() / dir_name / "out"; }

  DebeziumPeerOptions peer(const std::string& prefix, const std::string& slot,
                           const std::string& publication) {
    DebeziumPeerOptions o;
    o.port = pg().port();
    o.database = db();
    o.slot = slot;
    o.publication = publication;
    o.topicPrefix = prefix;
    o.out = tmp().path() / ("debezium-" + prefix);
    return o;
  }

  void createSlot(const std::string& slot) {
    scalar("SELECT lsn FROM pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");
  }

  /// The ids docs/COMPATIBILITY.md lists.
  std::set<std::string> documentedIds() {
    try {
      return documentedDifferences(kSourceDir / "docs/COMPATIBILITY.md");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      return {};
    }
  }

  /// Whether every difference found is listed in docs/COMPATIBILITY.md, and every listed one of
  /// this test's kind (the snapshot's, "snapshot: <id>", or the stream's, all others) was found.
  void expectDocumented(const std::map<std::string, std::string>& found, bool snapshot) {
    const std::set<std::string> documented = documentedIds();
    std::map<std::string, std::string> undocumented;
    for (const auto& [id, example] : found) {
      if (documented.count(id) == 0) undocumented.emplace(id, example);
    }
    EXPECT_TRUE(undocumented.empty())
        << "differences from Debezium that docs/COMPATIBILITY.md does not list; fix them, or list "
           "them there as deliberate with the reason:\n"
        << listing(undocumented);
    std::string gone;
    for (const auto& id : documented) {
      if (found.count(id) == 0 && (id.rfind("snapshot: ", 0) == 0) == snapshot) gone += "  `" + id + "`\n";
    }
    EXPECT_TRUE(gone.empty()) << "docs/COMPATIBILITY.md lists differences the suite no longer sees; take them out:\n"
                              << gone;
    if (HasFailure()) std::cerr << "all differences found:\n" << listing(found);
  }
};

const std::string kAllTables =
    "[public.types, public.ops, public.ops_full, public.composite, public.no_pk, "
    "public.toasted, public.toasted_full, public.toasted_key, public.keyed_by_index, "
    "public.unique_no_pk, public.café, public.measurements, '\"SalesDept\".\"Order Items\"', "
    "public.workload_end]";
const std::string kRootPublication =
    "CREATE PUBLICATION compat_root FOR TABLE types, ops, ops_full, composite, no_pk, toasted, "
    "toasted_full, toasted_key, keyed_by_index, unique_no_pk, \"café\", measurements, "
    "\"SalesDept\".\"Order Items\", workload_end "
    "WITH (publish_via_partition_root = true)";

TEST_F(CompatTest, EventsAreDebeziumsButForTheDocumentedDifferences) {
  sql(readFile(kSourceDir / "tests/compat/schema.sql"));
  const std::string& allTables = kAllTables;
  sql(kRootPublication);
  // The same partitioned table published under its partitions' names.
  sql("CREATE PUBLICATION compat_leaf FOR TABLE measurements "
      "WITH (publish_via_partition_root = false)");

  // Slots first, so that both readers start where the workload starts.
  const auto rootConfig = pipeline("root", "t1", "tm_root", "compat_root", allTables);
  RunResult first = runUntil(rootConfig, currentLsn());
  ASSERT_EQ(first.exitCode, 0) << first.description;
  createSlot("dbz_root");
  createSlot("dbz_leaf");

  PgConnection conn = connect();
  runStatements(conn, kSourceDir / "tests/compat/changes.sql");
  // Debezium stops at its first record at or past `lastChangeAt`; records delivered with it
  // may be cut off. The workload ends with a non-transactional message, reported at the LSN
  // where the next record starts, so a first row of workload_end takes that LSN and the
  // second, past the insert position taken between them, is the one Debezium stops at.
  sql("INSERT INTO workload_end VALUES (1)");
  const std::string lastChangeAt = scalar("SELECT pg_current_wal_insert_lsn()");
  sql("INSERT INTO workload_end VALUES (2)");
  const std::string end = currentLsn();

  // Both Debezium peers and the pipeline at once: each reads its own slot.
  DebeziumPeerOptions rootPeer = peer("t1", "dbz_root", "compat_root");
  rootPeer.stopAtLsn = lastChangeAt;
  rootPeer.properties["heartbeat.interval.ms"] = "100";
  DebeziumPeerOptions leafPeer = peer("t2", "dbz_leaf", "compat_leaf");
  leafPeer.stopAfter = 6;  // the changes of measurements, and the two messages
  auto rootRun = std::async(std::launch::async, [&] { return runDebeziumPeer(rootPeer); });
  auto leafRun = std::async(std::launch::async, [&] { return runDebeziumPeer(leafPeer); });
  RunResult tmRoot = runUntil(rootConfig, end);
  // Rows published under a partition's name: tidemark refuses to start (COMPATIBILITY.md).
  const auto leafConfig = pipeline("leaf", "t2", "tm_leaf", "compat_leaf", "[public.measurements]");
  RunResult tmLeaf = runUntil(leafConfig, end);
  DebeziumPeerResult dbzRoot = rootRun.get();
  DebeziumPeerResult dbzLeaf = leafRun.get();
  ASSERT_EQ(tmRoot.exitCode, 0) << tmRoot.description;
  EXPECT_EQ(tmLeaf.exitCode, 1) << tmLeaf.description;
  EXPECT_NE(tmLeaf.err.find("publish_via_partition_root = true"), std::string::npos) << tmLeaf.description;
  ASSERT_EQ(dbzRoot.exitCode, 0) << dbzRoot.description;
  ASSERT_EQ(dbzLeaf.exitCode, 0) << dbzLeaf.description;

  // Heartbeat events: tidemark's every interval while it streams.
  const auto beatConfig = pipeline("beat", "t1", "tm_beat", "compat_root", allTables,
                                   "interval: 200ms\nmode: \"off\"\nevents: true\n");
  std::unique_ptr<Process> beat = startRun(beatConfig);
  const auto beatFile = outOf("beat") / "__debezium-heartbeat.t1.jsonl";
  ASSERT_EVENTUALLY(!readJsonLines(beatFile).empty() || !beat->running(), seconds(60))
      << beat->describe();
  beat->signal(SIGTERM);
  ASSERT_TRUE(beat->waitExit(seconds(30)).has_value()) << beat->describe();

  TopicLines fromRoot = readJsonLinesDir(outOf("root"));
  fromRoot["__debezium-heartbeat.t1"] = readJsonLines(beatFile);
  Comparison root = compareEvents(fromRoot,
                                  readJsonLinesDir(rootPeer.out), compareRules("t1"));
  // Messages are in every publication's stream; the root comparison covers them.
  TopicLines fromLeafPeer = readJsonLinesDir(leafPeer.out);
  fromLeafPeer.erase("t2.message");
  Comparison leaf = compareEvents(readJsonLinesDir(outOf("leaf")), fromLeafPeer, compareRules("t2"));
  EXPECT_GT(root.pairs, 60u) << "events paired; Debezium's figures: " << dbzRoot.figures;

  std::map<std::string, std::string> found = root.differences;
  for (const auto& [id, example] : leaf.differences) found.emplace("t2: " + id, example);
  expectDocumented(found, false);
}

// The initial snapshot: the tables as the workload left them, read by tidemark with one reader
// and with two, and by Debezium (snapshot.mode initial, one thread), each from a slot of its
// own. Reads pair by key; the fields that name each reader's own slot, transaction and start
// time are left out. What differs from Debezium must be listed in docs/COMPATIBILITY.md (the
// value renderings the stream shares, and the snapshot's own rows there); tidemark's two
// readers write the same events as its one, bar which rows carry the first and last markers.
TEST_F(CompatTest, SnapshotReadsAreDebeziumsButForTheDocumentedDifferences) {
  sql(readFile(kSourceDir / "tests/compat/schema.sql"));
  sql(kRootPublication);
  PgConnection conn = connect();
  runStatements(conn, kSourceDir / "tests/compat/changes.sql");
  // Tables large enough for two readers to split by key: a two-column one with text in its
  // key, and one of hostile names.
  sql("INSERT INTO composite SELECT 'r''\"' || (i % 7) || ',', i, 'n' || i FROM generate_series(1, 300) i");
  sql("INSERT INTO \"SalesDept\".\"Order Items\" SELECT i, i, 'q' || i FROM generate_series(100, 400) i");
  sql("ANALYZE");

  const auto one = pipeline("snap1", "t1", "tm_snap1", "compat_root", kAllTables, "mode: \"off\"\nevents: false\n",
                            "  snapshot:\n    mode: initial_only\n    max_threads: 1\n");
  RunResult oneRun = runTidemark({"run", "-c", one.string()});
  ASSERT_EQ(oneRun.exitCode, 0) << oneRun.description;
  const auto two = pipeline("snap2", "t1", "tm_snap2", "compat_root", kAllTables, "mode: \"off\"\nevents: false\n",
                            "  snapshot:\n    mode: initial_only\n    max_threads: 2\n    chunk_rows: 7\n");
  RunResult twoRun = runTidemark({"run", "-c", two.string()});
  ASSERT_EQ(twoRun.exitCode, 0) << twoRun.description;

  const TopicLines fromOne = readJsonLinesDir(outOf("snap1"));
  size_t reads = 0;
  for (const auto& [topic, lines] : fromOne) reads += lines.size();
  ASSERT_GT(reads, 600u);
  DebeziumPeerOptions dbz = peer("t1", "dbz_snap", "compat_root");
  dbz.stopAfter = static_cast<long>(reads);
  dbz.properties["snapshot.mode"] = "initial";
  dbz.properties["table.include.list"] =
      "public.types,public.ops,public.ops_full,public.composite,public.no_pk,public.toasted,public.toasted_full,"
      "public.toasted_key,public.keyed_by_index,public.unique_no_pk,public.café,public.measurements,"
      "SalesDept.Order Items,public.workload_end";
  dbz.timeout = seconds(120);
  DebeziumPeerResult dbzRun = runDebeziumPeer(dbz);
  ASSERT_EQ(dbzRun.exitCode, 0) << dbzRun.description;

  CompareRules rules = compareRules("t1");
  rules.pairReadsByKey = true;
  // Each reader's own slot, transaction and start time; and the markers, whose places follow
  // each reader's order of tables and rows (checked below for tidemark).
  for (const char* own : {"source.lsn", "source.txId", "source.sequence", "source.ts_ms", "source.ts_us",
                          "source.ts_ns", "source.snapshot"}) {
    rules.ignoredValuePaths.insert(own);
  }
  const Comparison withDebezium = compareEvents(fromOne, readJsonLinesDir(dbz.out), rules);
  // All but the one read of keyed_by_index, keyed by another key in each (listed).
  EXPECT_EQ(withDebezium.pairs, reads - 1) << "Debezium's figures: " << dbzRun.figures;
  // A difference the stream shows too is listed once; one of the snapshot's own is listed as
  // "snapshot: <id>".
  const std::set<std::string> documented = documentedIds();
  std::map<std::string, std::string> found;
  for (const auto& [id, example] : withDebezium.differences) {
    found.emplace(documented.count(id) != 0 ? id : "snapshot: " + id, example);
  }
  expectDocumented(found, true);

  // Two readers, chunks of seven rows: the same events.
  EXPECT_NE(twoRun.err.find("SalesDept.Order Items is read in 2 ranges of its key"), std::string::npos)
      << twoRun.err;
  EXPECT_NE(twoRun.err.find("public.composite is read in 2 ranges of its key"), std::string::npos) << twoRun.err;
  const TopicLines fromTwo = readJsonLinesDir(outOf("snap2"));
  const Comparison readers = compareEvents(fromTwo, fromOne, rules);
  EXPECT_EQ(readers.pairs, reads);
  EXPECT_TRUE(readers.differences.empty()) << listing(readers.differences);
  // The markers, in both: each table's first read "first_in_data_collection" and its last
  // "last_in_data_collection" (a table of one row: its one read either), all others "true";
  // one "first" and one "last" in place of one of those.
  for (const TopicLines* out : {&fromOne, &fromTwo}) {
    std::map<std::string, int> overall;
    for (const auto& [topic, lines] : *out) {
      for (size_t i = 0; i < lines.size(); ++i) {
        const std::string m = lines[i]["value"]["source"]["snapshot"].get<std::string>();
        ++overall[m];
        std::set<std::string> allowed;
        if (i == 0) allowed.insert({"first", "first_in_data_collection"});
        if (i + 1 == lines.size()) allowed.insert({"last", "last_in_data_collection"});
        if (i > 0 && i + 1 < lines.size()) allowed.insert("true");
        EXPECT_EQ(allowed.count(m), 1u) << topic << " read " << i << " of " << lines.size() << ": " << m;
      }
    }
    EXPECT_EQ(overall["first"], 1);
    EXPECT_EQ(overall["last"], 1);
  }
}

}  // namespace
}  // namespace tidemark::test
