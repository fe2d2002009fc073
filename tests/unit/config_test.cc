// The pipeline file loader: what it accepts, every kind of rejection, and that no secret ever
// reaches a message.
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "config/settings.h"
#include "support/assertions.h"

namespace tidemark::config {
namespace {

using std::chrono::milliseconds;

constexpr const char* kOrigin = "test.yaml";
const std::filesystem::path kBase = "/etc/tidemark";
constexpr const char* kSecret = "Zq9-SeCrEt-Pw";

using test::contains;

PipelineConfig load(const std::string& yaml, const std::filesystem::path& base = kBase) {
  return loadString(yaml, kOrigin, base);
}

// Loads text that must be rejected; returns the error after checking that it is a
// configuration error whose message starts with the origin.
Error loadError(const std::string& yaml, const std::filesystem::path& base = kBase) {
  try {
    loadString(yaml, kOrigin, base);
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Config);
    EXPECT_TRUE(std::string(e.what()).starts_with(std::string(kOrigin) + ": ")) << e.what();
    return e;
  }
  ADD_FAILURE() << "accepted, but should have been rejected:\n" << yaml;
  return Error(ErrorClass::Fatal, "accepted");
}

// A valid pipeline with `extra` appended to the source section (each line indented by two).
std::string withSource(const std::string& extra) {
  return "name: shop\n"
         "source:\n"
         "  dsn: \"host=db dbname=shop user=tidemark\"\n"
         "  tables: [public.orders]\n" +
         extra +
         "sinks:\n"
         "  - name: files\n"
         "    kind: jsonl\n"
         "    path: ./out\n";
}

// A valid pipeline with the given sinks section body.
std::string withSinks(const std::string& sinks) {
  return "name: shop\n"
         "source:\n"
         "  dsn: \"host=db dbname=shop user=tidemark\"\n"
         "  tables: [public.orders]\n"
         "sinks:\n" +
         sinks;
}

// A valid pipeline with top-level lines added before it.
std::string withTop(const std::string& extra) { return extra + withSource(""); }

// A directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ =
        std::filesystem::temp_directory_path() /
        ("tidemark_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& content) const {
    std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::filesystem::path path_;
};

// Sets an environment variable for one test.
class EnvVar {
 public:
  EnvVar(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~EnvVar() { ::unsetenv(name_.c_str()); }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string name_;
};

// ---------------------------------------------------------------------------------------------
// Accepted files.

TEST(ConfigLoad, ProductMinimalExampleLoads) {
  PipelineConfig c = load(std::string(minimalExample()));
  EXPECT_EQ(c.name, "shop");
  EXPECT_EQ(c.topic_prefix, "shop");
  EXPECT_EQ(c.state_dir, "/etc/tidemark/shop.state");
  EXPECT_EQ(c.source.kind, "postgres");
  EXPECT_EQ(c.source.dsn, "host=127.0.0.1 port=5432 dbname=shop user=tidemark sslmode=prefer");
  EXPECT_EQ(c.source.slot, "tidemark_slot");
  EXPECT_EQ(c.source.publication, "tidemark_pub");
  ASSERT_EQ(c.source.tables.size(), 2u);
  EXPECT_EQ(c.source.tables[0], (TableName{"public", "orders"}));
  EXPECT_EQ(c.source.tables[1], (TableName{"public", "customers"}));
  ASSERT_EQ(c.sinks.size(), 1u);
  EXPECT_EQ(c.sinks[0].name, "files");
  EXPECT_EQ(c.sinks[0].kind, "jsonl");
  EXPECT_EQ(c.sinks[0].path, "/etc/tidemark/out");
  EXPECT_FALSE(c.sinks[0].with_key);
}

TEST(ConfigLoad, OmittedSettingsTakeTheDefaultsOfConfigH) {
  PipelineConfig c = load(withSource(""));
  PipelineConfig defaults;
  SinkConfig sink_defaults;
  EXPECT_EQ(c.log_level, defaults.log_level);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.source.kind, "postgres");
  EXPECT_FALSE(c.source.password.has_value());
  EXPECT_EQ(c.source.slot, defaults.source.slot);
  EXPECT_EQ(c.source.publication, defaults.source.publication);
  EXPECT_TRUE(c.source.create_slot);
  EXPECT_TRUE(c.source.create_publication);
  EXPECT_EQ(c.source.status_interval, milliseconds(10000));
  EXPECT_EQ(c.source.connect_timeout, milliseconds(10000));
  EXPECT_EQ(c.delivery.flush_interval, milliseconds(500));
  EXPECT_EQ(c.delivery.flush_bytes, 64ull << 20);
  EXPECT_EQ(c.sinks[0].with_key, sink_defaults.with_key);
}

TEST(ConfigLoad, EverySettingIsRead) {
  PipelineConfig c = load(R"(
name: shop-eu.1
topic_prefix: cdc.shop
state_dir: /var/lib/tidemark/shop
log_level: debug
source:
  kind: postgres
  dsn: postgres://tidemark@db:5432/shop
  password: hunter2
  slot: shop_slot_1
  publication: shop_pub
  create_slot: false
  create_publication: False
  tables:
    - orders
    - inventory.items
  status_interval: 2s
  connect_timeout: 1m
sinks:
  - name: files
    kind: jsonl
    path: /data/out
    with_key: true
  - name: console
    kind: stdout
delivery:
  flush_interval: 250ms
  flush_bytes: 1GiB
)");
  EXPECT_EQ(c.name, "shop-eu.1");
  EXPECT_EQ(c.topic_prefix, "cdc.shop");
  EXPECT_EQ(c.state_dir, "/var/lib/tidemark/shop");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.source.dsn, "postgres://tidemark@db:5432/shop");
  EXPECT_EQ(c.source.password, "hunter2");
  EXPECT_EQ(c.source.slot, "shop_slot_1");
  EXPECT_EQ(c.source.publication, "shop_pub");
  EXPECT_FALSE(c.source.create_slot);
  EXPECT_FALSE(c.source.create_publication);
  ASSERT_EQ(c.source.tables.size(), 2u);
  EXPECT_EQ(c.source.tables[0].str(), "public.orders");
  EXPECT_EQ(c.source.tables[1].str(), "inventory.items");
  EXPECT_EQ(c.source.status_interval, milliseconds(2000));
  EXPECT_EQ(c.source.connect_timeout, milliseconds(60000));
  ASSERT_EQ(c.sinks.size(), 2u);
  EXPECT_TRUE(c.sinks[0].with_key);
  EXPECT_EQ(c.sinks[0].path, "/data/out");
  EXPECT_EQ(c.sinks[1].name, "console");
  EXPECT_EQ(c.sinks[1].kind, "stdout");
  EXPECT_TRUE(c.sinks[1].path.empty());
  EXPECT_EQ(c.delivery.flush_interval, milliseconds(250));
  EXPECT_EQ(c.delivery.flush_bytes, 1ull << 30);
}

TEST(ConfigLoad, EmptyDeliverySectionKeepsDefaults) {
  PipelineConfig c = load(withSource("") + "delivery:\n");
  EXPECT_EQ(c.delivery.flush_interval, milliseconds(500));
}

// ---------------------------------------------------------------------------------------------
// Unknown keys, wrong types, missing keys.

TEST(ConfigReject, UnknownTopLevelKeyListsKnownKeysAndSuggestsOne) {
  Error e = loadError("nmae: shop\n" + withSource("").substr(std::string("name: shop\n").size()));
  EXPECT_TRUE(contains(e.what(),
                       "test.yaml: nmae: unknown key; known keys: name, topic_prefix, "
                       "state_dir, log_level, source, sinks, delivery"));
  EXPECT_TRUE(contains(e.what(), "(line 1)"));
  EXPECT_TRUE(e.hint().starts_with("did you mean name?")) << e.hint();
  // Every problem at once: the name is also missing.
  EXPECT_TRUE(contains(e.what(), "test.yaml: 2 problems:"));
  EXPECT_TRUE(contains(e.what(), "name: required key is missing"));
}

TEST(ConfigReject, UnknownKeyInASinkNamesItsIndex) {
  Error e =
      loadError(withSinks("  - name: a\n    kind: stdout\n"
                          "  - name: b\n    kind: jsonl\n    pth: ./out\n"));
  EXPECT_TRUE(
      contains(e.what(), "sinks[1].pth: unknown key; known keys: name, kind, path, with_key"));
  EXPECT_TRUE(e.hint().starts_with("did you mean path?")) << e.hint();
}

TEST(ConfigReject, UnknownKeyInSource) {
  Error e = loadError(withSource("  slot_name: x\n"));
  EXPECT_TRUE(contains(e.what(), "source.slot_name: unknown key; known keys: kind, dsn, "));
}

TEST(ConfigReject, UnknownKeyInDelivery) {
  Error e = loadError(withSource("") + "delivery:\n  flush_every: 1s\n");
  EXPECT_TRUE(contains(e.what(), "delivery.flush_every: unknown key"));
}

TEST(ConfigReject, DottedKeyIsNotANestedSetting) {
  Error e = loadError(withTop("source.slot: x\n"));
  EXPECT_TRUE(contains(e.what(), "source.slot: unknown key"));
  EXPECT_TRUE(contains(e.hint(), "nested mappings"));
}

TEST(ConfigReject, ListWhereTablesExpected) {
  Error e = loadError(
      "name: shop\nsource:\n  dsn: x=y\n  tables: public.orders\nsinks:\n  - {name: a, kind: "
      "stdout}\n");
  EXPECT_TRUE(contains(e.what(), "source.tables: expected a list of table names, got a scalar"));
}

TEST(ConfigReject, WrongTypesNameThePathAndTheExpectedType) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  std::vector<Case> cases = {
      {withTop("log_level: [info]\n"),
       "log_level: expected one of debug, info, warn, error, "
       "got a list"},
      {"name: [shop]\n", "name: expected a string, got a list"},
      {"name:\n", "name: expected a string, got an empty value"},
      {"name: shop\nsource: [a, b]\n", "source: expected a mapping with keys kind, dsn,"},
      {"name: shop\nsource: postgres\n", "source: expected a mapping with keys kind, dsn,"},
      {withSource("").substr(0, withSource("").find("sinks:")) + "sinks:\n  name: a\n",
       "sinks: expected a list of mappings with keys name, kind, path, with_key, dsn, mode, schema, soft_delete, truncate, got a mapping"},
      {withSinks("  - stdout\n"),
       "sinks[0]: expected a mapping with keys name, kind, path, "
       "with_key, dsn, mode, schema, soft_delete, truncate, got a scalar"},
      {withSinks("  -\n"), "sinks[0]: expected a mapping"},
      {withSource("  create_slot: yes\n"), "source.create_slot: expected true or false, got 'yes'"},
      {withSource("  create_slot: {a: 1}\n"),
       "source.create_slot: expected true or false, got a mapping"},
      {withSource("  status_interval: [1s]\n"),
       "source.status_interval: expected a duration such as 10s, got a list"},
      {withSource("") + "delivery:\n  flush_bytes: {}\n",
       "delivery.flush_bytes: expected a size such as 64MiB, got a mapping"},
      {withSource("") + "delivery: 5\n",
       "delivery: expected a mapping with keys flush_interval, "
       "flush_bytes, got a scalar"},
      {withSource("  tables: [[a]]\n"), "duplicate key"},
      {"name: shop\nsource:\n  dsn: host=b\n  tables: [[a]]\nsinks:\n  - {name: a, kind: stdout}\n",
       "source.tables[0]: expected a table name, got a list"},
      {"name: shop\nsource:\n  dsn: host=b\n  tables: []\nsinks:\n  - {name: a, kind: stdout}\n",
       "source.tables: at least one table is required"},
      {"[a, b]\n", "test.yaml: expected a mapping with keys name, topic_prefix"},
      {"? [a]\n: b\n", "keys must be names, got a list as a key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    Error e = loadError(c.yaml);
    EXPECT_TRUE(contains(e.what(), c.message));
  }
}

TEST(ConfigReject, MissingRequiredKeysAreNamed) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  std::vector<Case> cases = {
      {"source:\n  dsn: host=b\n  tables: [t]\nsinks:\n  - {name: a, kind: stdout}\n",
       "test.yaml: name: required key is missing"},
      {"name: shop\nsinks:\n  - {name: a, kind: stdout}\n", "source: required key is missing"},
      {"name: shop\nsource:\n  dsn: host=b\n  tables: [t]\n", "sinks: required key is missing"},
      {"name: shop\nsource:\n  tables: [t]\nsinks:\n  - {name: a, kind: stdout}\n",
       "source.dsn: required key is missing (line 2)"},
      {"name: shop\nsource:\n  dsn: host=b\nsinks:\n  - {name: a, kind: stdout}\n",
       "source.tables: required key is missing"},
      {"name: shop\nsource:\nsinks:\n  - {name: a, kind: stdout}\n",
       "source.dsn: required key is missing"},
      {withSinks("  - name: a\n"), "sinks[0].kind: required key is missing"},
      {withSinks("  - kind: stdout\n"), "sinks[0].name: required key is missing"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    Error e = loadError(c.yaml);
    EXPECT_TRUE(contains(e.what(), c.message));
    EXPECT_TRUE(contains(e.hint(), "add "));
  }
}

TEST(ConfigReject, EmptySinkList) {
  Error e = loadError(withSinks("  []\n"));
  EXPECT_TRUE(contains(e.what(), "sinks: at least one entry is required"));
}

TEST(ConfigReject, DuplicateKeyInAMapping) {
  Error e = loadError(withSource("  slot: a\n  slot: b\n"));
  EXPECT_TRUE(contains(e.what(), "source.slot: duplicate key (first at line 5) (line 6)"));
}

TEST(ConfigReject, DuplicateSinkNames) {
  Error e =
      loadError(withSinks("  - {name: out, kind: stdout}\n"
                          "  - {name: out, kind: jsonl, path: ./x}\n"));
  EXPECT_TRUE(contains(e.what(), "sinks[1].name: 'out' is also the name of sinks[0]"));
  EXPECT_TRUE(contains(e.hint(), "unique"));
}

TEST(ConfigReject, TwoJsonlSinksInOneDirectory) {
  Error e =
      loadError(withSinks("  - {name: a, kind: jsonl, path: ./out}\n"
                          "  - {name: b, kind: jsonl, path: out/}\n"));
  EXPECT_TRUE(
      contains(e.what(), "sinks[1].path: '/etc/tidemark/out' is also the path of sinks[0]"));
}

TEST(ConfigReject, JsonlSinkNeedsPathAndStdoutSinkRefusesOne) {
  Error missing = loadError(withSinks("  - {name: a, kind: jsonl}\n"));
  EXPECT_TRUE(contains(missing.what(), "sinks[0].path: required for kind jsonl"));
  Error extra = loadError(withSinks("  - {name: a, kind: stdout, path: ./out}\n"));
  EXPECT_TRUE(contains(extra.what(), "sinks[0].path: not allowed for kind stdout"));
  EXPECT_NO_THROW(load(withSinks("  - {name: a, kind: stdout}\n")));
}

TEST(ConfigReject, FileWithSeveralDocumentsOrNoneOrBrokenYaml) {
  EXPECT_TRUE(contains(loadError("").what(), "test.yaml: is empty"));
  EXPECT_TRUE(contains(loadError("# nothing\n").what(), "test.yaml: is empty"));
  EXPECT_TRUE(
      contains(loadError(withSource("") + "---\nname: other\n").what(), "holds 2 YAML documents"));
  Error broken = loadError("name: shop\nsource: [a, b\n");
  EXPECT_TRUE(contains(broken.what(), "test.yaml: not valid YAML at line"));
}

// ---------------------------------------------------------------------------------------------
// Values: enums, names, durations, sizes.

TEST(ConfigReject, ValueNotInAnEnum) {
  EXPECT_TRUE(contains(loadError(withTop("log_level: verbose\n")).what(),
                       "log_level: 'verbose' is not one of debug, info, warn, error"));
  EXPECT_TRUE(contains(loadError(withSinks("  - {name: a, kind: kafka}\n")).what(),
                       "sinks[0].kind: 'kafka' is not one of jsonl, stdout"));
  EXPECT_TRUE(contains(loadError(withSource("  kind: mysql\n")).what(),
                       "source.kind: 'mysql' is not one of postgres"));
  EXPECT_TRUE(contains(loadError(withTop("log_level: INFO\n")).what(), "is not one of"));
}

TEST(ConfigReject, PipelineAndSinkNamesKeepToTopicAndFileCharacters) {
  EXPECT_TRUE(contains(loadError("name: my shop\n").what(),
                       "name: 'my shop' may only contain letters, digits"));
  EXPECT_TRUE(contains(loadError("name: shop/../x\n").what(), "name: 'shop/../x' may only"));
  EXPECT_TRUE(contains(loadError("name: ''\n").what(), "name: must not be empty"));
  EXPECT_TRUE(contains(loadError("name: " + std::string(64, 'a') + "\n").what(),
                       "must be 1 to 63 characters long"));
  EXPECT_EQ(load("name: " + std::string(63, 'a') + "\n" +
                 withSource("").substr(std::string("name: shop\n").size()))
                .name.size(),
            63u);
  EXPECT_TRUE(contains(loadError(withTop("topic_prefix: a:b\n")).what(),
                       "topic_prefix: 'a:b' may only contain"));
  EXPECT_TRUE(contains(loadError(withSinks("  - {name: 'a b', kind: stdout}\n")).what(),
                       "sinks[0].name: 'a b' may only contain"));
}

TEST(ConfigLoad, TopicPrefixDefaultsToNameAndMayBeSet) {
  EXPECT_EQ(load(withSource("")).topic_prefix, "shop");
  EXPECT_EQ(load(withTop("topic_prefix: dbserver1\n")).topic_prefix, "dbserver1");
}

TEST(ConfigReject, SlotAndPublicationNamesFollowPostgresRules) {
  Error upper = loadError(withSource("  slot: Tidemark\n"));
  EXPECT_TRUE(contains(upper.what(), "source.slot: 'Tidemark' may only contain lower-case"));
  EXPECT_TRUE(contains(upper.hint(), "lower-case"));
  EXPECT_TRUE(contains(loadError(withSource("  slot: my-slot\n")).what(), "source.slot"));
  EXPECT_TRUE(contains(loadError(withSource("  slot: " + std::string(64, 's') + "\n")).what(),
                       "must be 1 to 63 characters long"));
  EXPECT_EQ(load(withSource("  slot: 0slot_9\n")).source.slot, "0slot_9");
  EXPECT_TRUE(contains(loadError(withSource("  publication: 1pub\n")).what(),
                       "source.publication: '1pub' must not start with a digit"));
  EXPECT_TRUE(contains(loadError(withSource("  publication: \"my pub\"\n")).what(),
                       "source.publication: 'my pub' may only contain"));
}

TEST(ConfigValues, DurationsNeedAUnit) {
  EXPECT_EQ(parseDuration("500ms").value, milliseconds(500));
  EXPECT_EQ(parseDuration("10s").value, milliseconds(10000));
  EXPECT_EQ(parseDuration("1m").value, milliseconds(60000));
  EXPECT_EQ(parseDuration("2h").value, milliseconds(7200000));
  EXPECT_EQ(parseDuration("10 s").value, milliseconds(10000));
  EXPECT_EQ(parseDuration("0ms").value, milliseconds(0));
  for (const char* bad : {"500", "", "s", "1.5s", "-1s", "10x", "10sec", "1 0s", "10S",
                          "99999999999999999999ms", "9999999999999999h"}) {
    SCOPED_TRACE(bad);
    Parsed<milliseconds> parsed = parseDuration(bad);
    EXPECT_FALSE(parsed.value.has_value());
    EXPECT_FALSE(parsed.problem.empty());
  }
  EXPECT_EQ(parseDuration("500").problem, "has no unit");
}

TEST(ConfigValues, SizesTakeBinaryUnitsOrBytes) {
  EXPECT_EQ(parseSize("1000B").value, 1000u);
  EXPECT_EQ(parseSize("512KiB").value, 512u * 1024);
  EXPECT_EQ(parseSize("64MiB").value, 64ull << 20);
  EXPECT_EQ(parseSize("1GiB").value, 1ull << 30);
  EXPECT_EQ(parseSize("2TiB").value, 2ull << 40);
  EXPECT_EQ(parseSize("4096").value, 4096u);
  EXPECT_TRUE(contains(parseSize("64MB").problem, "ambiguous unit"));
  EXPECT_TRUE(contains(parseSize("64mib").problem, "unknown unit"));
  EXPECT_FALSE(parseSize("1.5GiB").value.has_value());
  EXPECT_FALSE(parseSize("GiB").value.has_value());
  EXPECT_FALSE(parseSize("20000000TiB").value.has_value());
}

TEST(ConfigValues, FormattingPicksTheLargestExactUnit) {
  EXPECT_EQ(formatDuration(milliseconds(10000)), "10s");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(formatDuration(milliseconds(3600000)), "1h");
  EXPECT_EQ(formatDuration(milliseconds(120000)), "2m");
  EXPECT_EQ(formatDuration(milliseconds(0)), "0ms");
  EXPECT_EQ(formatSize(64ull << 20), "64MiB");
  EXPECT_EQ(formatSize(1000), "1000B");
  EXPECT_EQ(formatSize(16ull << 30), "16GiB");
  EXPECT_EQ(formatSize(0), "0B");
}

TEST(ConfigReject, DurationWithoutUnitGetsAnExample) {
  Error e = loadError(withSource("  status_interval: 500\n"));
  EXPECT_TRUE(contains(e.what(), "source.status_interval: '500' has no unit"));
  EXPECT_TRUE(contains(e.hint(), "500ms, 10s, 1m, 2h"));
  EXPECT_TRUE(contains(loadError(withSource("  status_interval: 10 seconds\n")).what(),
                       "has an unknown unit; use ms, s, m or h"));
}

TEST(ConfigReject, DurationsAndSizesOutOfBounds) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  std::vector<Case> cases = {
      {withSource("  status_interval: 50ms\n"), "'50ms' is below the minimum 100ms"},
      {withSource("  status_interval: 2h\n"), "'2h' is above the maximum 1h"},
      {withSource("  connect_timeout: 500ms\n"), "'500ms' is below the minimum 1s"},
      {withSource("  connect_timeout: 11m\n"), "'11m' is above the maximum 10m"},
      {withSource("") + "delivery:\n  flush_interval: 0ms\n", "is below the minimum 1ms"},
      {withSource("") + "delivery:\n  flush_bytes: 512B\n", "'512B' is below the minimum 1KiB"},
      {withSource("") + "delivery:\n  flush_bytes: 17GiB\n", "is above the maximum 16GiB"},
      {withSource("") + "delivery:\n  flush_bytes: 64MB\n", "'64MB' has an ambiguous unit"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    Error e = loadError(c.yaml);
    EXPECT_TRUE(contains(e.what(), c.message));
  }
  EXPECT_TRUE(contains(loadError(withSource("  status_interval: 2h\n")).hint(),
                       "use a value from 100ms to 1h"));
  PipelineConfig edges = load(withSource("  status_interval: 100ms\n  connect_timeout: 10m\n") +
                              "delivery:\n  flush_interval: 1h\n  flush_bytes: 1024\n");
  EXPECT_EQ(edges.source.status_interval, milliseconds(100));
  EXPECT_EQ(edges.delivery.flush_bytes, 1024u);
}

// ---------------------------------------------------------------------------------------------
// Table names.

TEST(ConfigValues, TableNamesFoldUnquotedAndKeepQuoted) {
  EXPECT_EQ(parseTableName("orders").value, (TableName{"public", "orders"}));
  EXPECT_EQ(parseTableName("Sales.Orders").value, (TableName{"sales", "orders"}));
  EXPECT_EQ(parseTableName("\"My Schema\".\"Weird.Table\"").value,
            (TableName{"My Schema", "Weird.Table"}));
  EXPECT_EQ(parseTableName("public.\"Mixed\"").value, (TableName{"public", "Mixed"}));
  EXPECT_EQ(parseTableName("\"a\"\"b\"").value, (TableName{"public", "a\"b"}));
  EXPECT_EQ(parseTableName("_t$1").value, (TableName{"public", "_t$1"}));
  EXPECT_EQ(parseTableName("café").value, (TableName{"public", "café"}));
  for (const char* bad : {"", ".", "a.", ".a", "a..b", "a.b.c", "\"\"", "\"abc", "\"a\"b",
                          "my table", "1abc", "a-b", "a.$b"}) {
    SCOPED_TRACE(bad);
    Parsed<TableName> parsed = parseTableName(bad);
    EXPECT_FALSE(parsed.value.has_value());
    EXPECT_FALSE(parsed.problem.empty());
  }
  EXPECT_FALSE(parseTableName(std::string(64, 't')).value.has_value());
  EXPECT_TRUE(parseTableName(std::string(63, 't')).value.has_value());
}

TEST(ConfigLoad, QuotedTableNamesInTheFile) {
  PipelineConfig c = load(
      "name: shop\nsource:\n  dsn: host=b\n  tables:\n"
      "    - '\"My Schema\".\"Weird.Table\"'\n"
      "    - Orders\n"
      "    - \"public.\\\"Mixed\\\"\"\n"
      "sinks:\n  - {name: a, kind: stdout}\n");
  ASSERT_EQ(c.source.tables.size(), 3u);
  EXPECT_EQ(c.source.tables[0], (TableName{"My Schema", "Weird.Table"}));
  EXPECT_EQ(c.source.tables[1], (TableName{"public", "orders"}));
  EXPECT_EQ(c.source.tables[2], (TableName{"public", "Mixed"}));
}

TEST(ConfigReject, BadOrDuplicateTableNames) {
  auto tables = [](const std::string& list) {
    return "name: shop\nsource:\n  dsn: host=b\n  tables: " + list +
           "\nsinks:\n  - {name: a, kind: stdout}\n";
  };
  Error dup = loadError(tables("[orders, public.ORDERS]"));
  EXPECT_TRUE(contains(dup.what(),
                       "source.tables[1]: 'public.orders' is listed twice (also "
                       "source.tables[0])"));
  Error bad = loadError(tables("[orders, 'my table']"));
  EXPECT_TRUE(contains(bad.what(), "source.tables[1]: 'my table' is not a valid table name"));
  EXPECT_TRUE(contains(bad.hint(), "double-quote"));
  EXPECT_TRUE(contains(loadError(tables("[a.b.c]")).what(), "more than two parts"));
  EXPECT_TRUE(contains(loadError(tables("['public.']")).what(), "empty name part"));
  EXPECT_NO_THROW(load(tables("[Orders, '\"Orders\"']")));
}

// ---------------------------------------------------------------------------------------------
// Environment variables.

TEST(ConfigEnv, VariablesAreExpandedInStringScalars) {
  EnvVar host("TIDEMARK_TEST_HOST", "db.internal");
  EnvVar interval("TIDEMARK_TEST_INTERVAL", "3s");
  EnvVar dir("TIDEMARK_TEST_DIR", "/srv/out");
  PipelineConfig c = load(
      "name: shop\nsource:\n  dsn: \"host=${TIDEMARK_TEST_HOST} dbname=shop\"\n"
      "  tables: [orders]\n  status_interval: ${TIDEMARK_TEST_INTERVAL}\n"
      "sinks:\n  - {name: a, kind: jsonl, path: \"${TIDEMARK_TEST_DIR}/${TIDEMARK_TEST_DIR}\"}\n");
  EXPECT_EQ(c.source.dsn, "host=db.internal dbname=shop");
  EXPECT_EQ(c.source.status_interval, milliseconds(3000));
  EXPECT_EQ(c.sinks[0].path, "/srv/out/srv/out");
}

TEST(ConfigEnv, DoubledDollarIsALiteral) {
  EnvVar var("TIDEMARK_TEST_X", "expanded");
  PipelineConfig c = load(withSource("  password: \"a$${TIDEMARK_TEST_X}b$c$$d\"\n"));
  EXPECT_EQ(c.source.password, "a${TIDEMARK_TEST_X}b$c$$d");
}

TEST(ConfigEnv, UnsetVariableNamesTheVariableAndTheKey) {
  ::unsetenv("TIDEMARK_TEST_UNSET");
  Error e = loadError(withSource("  slot: ${TIDEMARK_TEST_UNSET}\n"));
  EXPECT_TRUE(
      contains(e.what(), "source.slot: environment variable TIDEMARK_TEST_UNSET is not set"));
  EXPECT_TRUE(contains(e.hint(), "$${"));
  Error in_list = loadError(
      "name: shop\nsource:\n  dsn: host=b\n  tables: [a, '${TIDEMARK_TEST_UNSET}']\n"
      "sinks:\n  - {name: a, kind: stdout}\n");
  EXPECT_TRUE(contains(in_list.what(),
                       "source.tables[1]: environment variable "
                       "TIDEMARK_TEST_UNSET is not set"));
}

TEST(ConfigEnv, MalformedReferences) {
  EXPECT_TRUE(contains(loadError(withSource("  slot: \"${OOPS\"\n")).what(),
                       "source.slot: has '${' without a closing '}'"));
  EXPECT_TRUE(contains(loadError(withSource("  slot: \"${}\"\n")).what(),
                       "'' is not a valid environment variable name"));
  EXPECT_TRUE(contains(loadError(withSource("  slot: \"${A-B}\"\n")).what(),
                       "'A-B' is not a valid environment variable name"));
}

TEST(ConfigEnv, MessagesQuoteTheFileNotTheEnvironment) {
  EnvVar slot("TIDEMARK_TEST_SLOT", "Not-A-Slot");
  Error e = loadError(withSource("  slot: ${TIDEMARK_TEST_SLOT}\n"));
  EXPECT_TRUE(contains(e.what(), "source.slot: the value of '${TIDEMARK_TEST_SLOT}' may only"));
  EXPECT_FALSE(contains(e.what(), "Not-A-Slot"));
}

TEST(ConfigEnv, EmptyVariableLeavesAnEmptyValue) {
  EnvVar empty("TIDEMARK_TEST_EMPTY", "");
  EXPECT_TRUE(contains(loadError(withSource("  password: ${TIDEMARK_TEST_EMPTY}\n")).what(),
                       "source.password: must not be empty"));
}

// ---------------------------------------------------------------------------------------------
// Secrets.

TEST(ConfigSecrets, PasswordNeverAppearsInAnyMessage) {
  const std::string s = kSecret;
  EnvVar env("TIDEMARK_TEST_SECRET", s);
  TempDir dir;
  dir.write("two-lines", s + "\n" + s + "\n");
  std::vector<std::string> files = {
      // Malformed conninfo: unterminated quote, a space splitting the password, no keyword.
      withSource("").replace(withSource("").find("host=db"), 7, "host=db password='" + s),
      "name: shop\nsource:\n  dsn: \"host=db password=abc " + s + " user=u\"\n",
      "name: shop\nsource:\n  dsn: \"" + s + "\"\n",
      "name: shop\nsource:\n  dsn: \"=" + s + "\"\n",
      // Malformed URIs.
      "name: shop\nsource:\n  dsn: \"postgres://u:" + s + "@x@host/db\"\n",
      "name: shop\nsource:\n  dsn: \"postgres://u:a/" + s + "@host/db\"\n",
      "name: shop\nsource:\n  dsn: \"postgres://u:a?" + s + "@host/db?x\"\n",
      "name: shop\nsource:\n  dsn: \"postgres://u@host/db?password=" + s + "&" + s + "\"\n",
      // The dsn from the environment, malformed.
      "name: shop\nsource:\n  dsn: \"password='${TIDEMARK_TEST_SECRET}\"\n",
      // password: wrong type, bad ${...}, YAML escape errors.
      withSource("  password: [" + s + "]\n"),
      withSource("  password: {" + s + ": 1}\n"),
      withSource("  password: \"" + s + "${\"\n"),
      withSource("  password: \"${" + s + "}\"\n"),
      withSource("  password: \"" + s + "\\q\"\n"),
      withSource("  password: \"\\q" + s + "\"\n"),
      // A valid password and an error elsewhere.
      withSource("  password: " + s + "\n  slot: Bad\n"),
      withSource("  password: " + s + "\n  password_file: /nonexistent\n"),
      withSource("  password: " + s + "\n  password: " + s + "\n"),
      // A password under a wrong key.
      withSource("  passwd: " + s + "\n"),
      // A password file with more than a line.
      withSource("  password_file: two-lines\n"),
  };
  for (const std::string& yaml : files) {
    SCOPED_TRACE(yaml);
    Error e = loadError(yaml, dir.path());
    EXPECT_EQ(e.describe().find(s), std::string::npos) << e.describe();
    EXPECT_EQ(e.describe().find("SeCrEt"), std::string::npos) << e.describe();
  }
}

TEST(ConfigSecrets, MalformedDsnSaysWhatIsWrongWithoutTheValue) {
  Error e =
      loadError(withSource("").replace(withSource("").find("host=db"), 7, "host=db password='x"));
  EXPECT_TRUE(contains(e.what(),
                       "source.dsn: the value (not shown: it may hold a secret) has an "
                       "unterminated quoted value"));
  EXPECT_TRUE(contains(e.hint(), "single-quote values with spaces"));
}

TEST(ConfigSecrets, PasswordFromFileWithTrailingNewlineStripped) {
  TempDir dir;
  dir.write("pw", "p@ss word\n");
  dir.write("pw-crlf", "crlf\r\n");
  dir.write("empty", "\n");
  PipelineConfig c = load(withSource("  password_file: pw\n"), dir.path());
  EXPECT_EQ(c.source.password, "p@ss word");
  EXPECT_EQ(load(withSource("  password_file: pw-crlf\n"), dir.path()).source.password, "crlf");
  EXPECT_EQ(
      load(withSource("  password_file: " + (dir.path() / "pw").string() + "\n")).source.password,
      "p@ss word");
  EXPECT_TRUE(contains(loadError(withSource("  password_file: empty\n"), dir.path()).what(),
                       "source.password_file: " + (dir.path() / "empty").string() + " is empty"));
  EXPECT_TRUE(contains(loadError(withSource("  password_file: missing\n"), dir.path()).what(),
                       "source.password_file: cannot read " + (dir.path() / "missing").string()));
  EXPECT_TRUE(contains(loadError(withSource("  password_file: .\n"), dir.path()).what(),
                       "is not a regular file"));
}

TEST(ConfigSecrets, PasswordAndPasswordFileAreExclusive) {
  TempDir dir;
  dir.write("pw", "x\n");
  Error e = loadError(withSource("  password: y\n  password_file: pw\n"), dir.path());
  EXPECT_TRUE(contains(e.what(),
                       "source.password_file: cannot be used together with "
                       "source.password"));
}

TEST(RedactDsn, ConninfoPasswordsAreMasked) {
  EXPECT_EQ(redactDsn("host=db password=secret user=u"), "host=db password=*** user=u");
  EXPECT_EQ(redactDsn("host=db password = secret"), "host=db password = ***");
  EXPECT_EQ(redactDsn("password='se cr\\'et' user=u"), "password=*** user=u");
  EXPECT_EQ(redactDsn("password='' user=u"), "password=*** user=u");
  EXPECT_EQ(redactDsn("password=a\\ b user=u"), "password=*** user=u");
  EXPECT_EQ(redactDsn("sslpassword=k1 password=k2"), "sslpassword=*** password=***");
  EXPECT_EQ(redactDsn("host=db dbname=shop"), "host=db dbname=shop");
  // libpq skips blanks after '=', so the password here is "host=x".
  EXPECT_EQ(redactDsn("password= host=x"), "password= ***");
  // A dbname that libpq may expand as a connection string.
  EXPECT_EQ(redactDsn("dbname='postgres://u:pw@h/db' host=x"), "dbname=*** host=x");
}

TEST(RedactDsn, MalformedConninfoMasksEverythingThatMayBeSecret) {
  EXPECT_EQ(redactDsn("host=x password='abc"), "host=x password=***");
  EXPECT_EQ(redactDsn("host=x password=abc def user=u"), "host=x password=*** ***");
  EXPECT_EQ(redactDsn("secret"), "***");
  EXPECT_EQ(redactDsn("host=x password='a\\"), "host=x password=***");
}

TEST(RedactDsn, UriPasswordsAreMasked) {
  EXPECT_EQ(redactDsn("postgres://user:secret@host/db"), "postgres://user:***@host/db");
  EXPECT_EQ(redactDsn("postgresql://user:s%40cret@host:5432/db?sslmode=require"),
            "postgresql://user:***@host:5432/db?sslmode=require");
  EXPECT_EQ(redactDsn("postgres://user@host/db?sslmode=require&password=x&application_name=t"),
            "postgres://user@host/db?sslmode=require&password=***&application_name=t");
  EXPECT_EQ(redactDsn("postgres://u@h/db?pass%77ord=x"), "postgres://u@h/db?pass%77ord=***");
  EXPECT_EQ(redactDsn("postgres://user@host:5432/db"), "postgres://user@host:5432/db");
  EXPECT_EQ(redactDsn("postgres://host:5432/db"), "postgres://host:5432/db");
  // A raw '@' in the password: everything up to the last '@' is hidden.
  EXPECT_EQ(redactDsn("postgres://u:p@ss@host/db"), "postgres://u:***@host/db");
  EXPECT_EQ(redactDsn("postgres://u@h/db?password=a&b"), "postgres://u@h/db?password=***&***");
  // Raw '?', '/' or '@' in a password, and a query password next to a malformed user part.
  EXPECT_EQ(redactDsn("postgres://u:pa?ss@host/db"), "postgres://u:***@host/db");
  EXPECT_EQ(redactDsn("postgres://u:pa/ss@host/db"), "postgres://u:***@host/db");
  EXPECT_EQ(redactDsn("postgres://u:a@b@host/db?password=x"),
            "postgres://u:***@host/db?password=***");
}

TEST(RedactDsn, ValidationAgreesWithRedaction) {
  EXPECT_EQ(dsnProblem("host=db password='a b' user=u"), "");
  EXPECT_EQ(dsnProblem("postgres://u:p%40ss@host/db"), "");
  EXPECT_NE(dsnProblem("postgres://u:p@ss@host/db"), "");
  EXPECT_NE(dsnProblem("postgres://u:p/ss@host/db"), "");
  EXPECT_NE(dsnProblem("postgres://host/db?application_name=a@b"), "");
  EXPECT_EQ(dsnProblem("postgres://u:pa?ss@host/db"), "");
  EXPECT_NE(dsnProblem("host=db password=a b"), "");
  EXPECT_NE(dsnProblem("   "), "");
}

// ---------------------------------------------------------------------------------------------
// Paths.

TEST(ConfigPaths, RelativePathsResolveAgainstTheConfigDirectory) {
  PipelineConfig c = load(withTop("state_dir: state/../st\n"), "/srv/pipelines");
  EXPECT_EQ(c.state_dir, "/srv/pipelines/st");
  EXPECT_EQ(c.sinks[0].path, "/srv/pipelines/out");
  PipelineConfig absolute = load(withTop("state_dir: /var/lib/x/\n"), "/srv/pipelines");
  EXPECT_EQ(absolute.state_dir, "/var/lib/x");
  EXPECT_EQ(load(withSource(""), "/srv/pipelines").state_dir, "/srv/pipelines/shop.state");
  Error tilde = loadError(withTop("state_dir: ~/state\n"));
  EXPECT_TRUE(contains(tilde.what(), "state_dir: '~/state': '~' is not expanded"));
  EXPECT_TRUE(contains(tilde.hint(), "${HOME}"));
}

TEST(ConfigPaths, LoadFileUsesTheFilesDirectoryAndNamesTheFile) {
  TempDir dir;
  dir.write("pw", "from-file\n");
  std::filesystem::path file = dir.write("shop.yaml", withSource("  password_file: pw\n"));
  PipelineConfig c = loadFile(file);
  EXPECT_EQ(c.state_dir, dir.path() / "shop.state");
  EXPECT_EQ(c.sinks[0].path, dir.path() / "out");
  EXPECT_EQ(c.source.password, "from-file");

  std::filesystem::path bad = dir.write("bad.yaml", "name: shop\nnmae: x\n");
  try {
    loadFile(bad);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "\n  " + bad.string() + ": nmae: unknown key")) << e.what();
  }
  try {
    loadFile(dir.path() / "missing.yaml");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.errorClass(), ErrorClass::Config);
    EXPECT_TRUE(contains(e.what(), "missing.yaml: cannot read the configuration file"));
  }
}

// ---------------------------------------------------------------------------------------------
// The settings table and the generated reference.

TEST(ConfigReference, DocsFileIsTheGeneratedReference) {
  std::ifstream in(std::filesystem::path(TIDEMARK_SOURCE_DIR) / "docs" / "CONFIGURATION.md",
                   std::ios::binary);
  ASSERT_TRUE(in) << "docs/CONFIGURATION.md is missing";
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), referenceMarkdown())
      << "docs/CONFIGURATION.md is stale: regenerate it from referenceMarkdown()";
}

TEST(ConfigReference, ListsEverySettingAndTheExampleLoads) {
  std::string doc = referenceMarkdown();
  EXPECT_TRUE(doc.starts_with("# Configuration reference\n"));
  for (const Setting& setting : allSettings()) {
    EXPECT_TRUE(contains(doc, std::string(setting.path))) << setting.path;
  }
  EXPECT_TRUE(contains(doc, std::string(minimalExample())));
  EXPECT_TRUE(contains(doc, "${"));
  EXPECT_NO_THROW(load(std::string(minimalExample())));
}

TEST(ConfigReference, EveryRowIsComplete) {
  for (const Setting& setting : allSettings()) {
    SCOPED_TRACE(setting.path);
    EXPECT_FALSE(setting.description.empty());
    EXPECT_EQ(setting.description.find('|'), std::string_view::npos);
    EXPECT_EQ(findSetting(setting.path), &setting) << "declared twice";
    if (setting.type != SettingType::Mapping) {
      EXPECT_NE(setting.store, nullptr);
    }
    if (setting.type == SettingType::Enum) {
      EXPECT_FALSE(setting.allowed.empty());
    }
    if (setting.type == SettingType::Duration || setting.type == SettingType::Size) {
      EXPECT_GT(setting.max, setting.min);
    }
    if (!setting.required && setting.default_text.empty() && setting.type != SettingType::Mapping) {
      EXPECT_NE(setting.show, nullptr) << "no way to document the default";
    }
  }
}

TEST(ConfigReference, DefaultsLieWithinTheirBounds) {
  PipelineConfig defaults;
  EXPECT_EQ(load(withSource("")).source.status_interval, defaults.source.status_interval);
  for (const Setting& setting : allSettings()) {
    if (setting.type != SettingType::Duration && setting.type != SettingType::Size) {
      continue;
    }
    // A default derived from other settings ("five intervals") is documented in words.
    if (setting.show == nullptr) {
      EXPECT_FALSE(setting.default_text.empty()) << setting.path;
      continue;
    }
    SCOPED_TRACE(setting.path);
    std::string shown = setting.show(defaults, SinkConfig{});
    std::string text = shown.substr(1, shown.size() - 2);  // drop the backquotes
    uint64_t value = setting.type == SettingType::Duration
                         ? static_cast<uint64_t>(parseDuration(text).value->count())
                         : *parseSize(text).value;
    EXPECT_GE(value, setting.min);
    EXPECT_LE(value, setting.max);
  }
}

TEST(ConfigHeartbeat, DefaultsAreLayerOneAndATableEveryMinute) {
  PipelineConfig c = load(withSource(""));
  EXPECT_TRUE(c.heartbeat.events);
  EXPECT_EQ(c.heartbeat.mode, "table");
  EXPECT_EQ(c.heartbeat.interval, std::chrono::minutes(1));
  EXPECT_EQ(c.heartbeat.table, (TableName{"tidemark", "tidemark_heartbeat"}));
  EXPECT_EQ(c.heartbeat.stallTimeout(), std::chrono::minutes(5));
  EXPECT_FALSE(c.source.read_only);
  EXPECT_TRUE(c.source.confirm_keepalives);
}

TEST(ConfigHeartbeat, ReadsEverySetting) {
  PipelineConfig c = load(withTop(
      "heartbeat:\n  interval: 5s\n  mode: query\n  query: UPDATE hb SET ts = now()\n"
      "  table: '\"Ops\".beats'\n  deliver: true\n  hibernate: false\n  stall_timeout: 1m\n"
      "  events: false\n"));
  EXPECT_EQ(c.heartbeat.interval, std::chrono::seconds(5));
  EXPECT_EQ(c.heartbeat.mode, "query");
  EXPECT_EQ(c.heartbeat.query, "UPDATE hb SET ts = now()");
  EXPECT_EQ(c.heartbeat.table, (TableName{"Ops", "beats"}));
  EXPECT_TRUE(c.heartbeat.deliver);
  EXPECT_FALSE(c.heartbeat.hibernate);
  EXPECT_FALSE(c.heartbeat.events);
  EXPECT_EQ(c.heartbeat.stallTimeout(), std::chrono::minutes(1));
}

TEST(ConfigHeartbeat, QueryModeNeedsAQueryAndOtherModesRefuseOne) {
  EXPECT_TRUE(contains(loadError(withTop("heartbeat:\n  mode: query\n")).what(), "heartbeat.query"));
  EXPECT_TRUE(contains(loadError(withTop("heartbeat:\n  query: SELECT 1\n")).what(),
                       "only used when heartbeat.mode is query"));
}

TEST(ConfigHeartbeat, ReadOnlySourceRefusesModesThatWrite) {
  Error message = loadError("heartbeat:\n  mode: message\n" + withSource("  read_only: true\n"));
  EXPECT_TRUE(contains(message.what(), "source.read_only forbids"));
  Error query = loadError("heartbeat:\n  mode: query\n  query: SELECT 1\n" +
                          withSource("  read_only: true\n"));
  EXPECT_TRUE(contains(query.what(), "source.read_only forbids"));
  EXPECT_TRUE(load("heartbeat:\n  mode: table\n" + withSource("  read_only: true\n")).source.read_only);
}

TEST(ConfigHeartbeat, HeartbeatTableCannotAlsoBeCapturedAsData) {
  Error e = loadError(withTop("heartbeat:\n  table: public.orders\n"));
  EXPECT_TRUE(contains(e.what(), "is the heartbeat table"));
  EXPECT_TRUE(contains(e.hint(), "heartbeat.deliver"));
}

TEST(ConfigHttp, DefaultsToLoopbackWithoutAToken) {
  PipelineConfig c = load(withSource(""));
  EXPECT_EQ(c.http.listen, "127.0.0.1:7070");
  EXPECT_FALSE(c.http.token);
  EXPECT_EQ(c.signal.table, (TableName{"tidemark", "tidemark_signal"}));
}

TEST(ConfigHttp, NonLoopbackListenRequiresAToken) {
  Error e = loadError(withTop("http:\n  listen: 0.0.0.0:7070\n"));
  EXPECT_TRUE(contains(e.what(), "http.token"));
  PipelineConfig c = load(withTop("http:\n  listen: 0.0.0.0:7070\n  token: s3cret-token\n"));
  EXPECT_EQ(c.http.token, "s3cret-token");
  EXPECT_EQ(load(withTop("http:\n  listen: off\n")).http.listen, "off");
  EXPECT_TRUE(contains(loadError(withTop("http:\n  listen: 7070\n")).what(), "host:port"));
  EXPECT_TRUE(contains(loadError(withTop("http:\n  listen: 'localhost:http'\n")).what(), "host:port"));
}

TEST(ConfigHttp, ListenSplitsAtTheLastColonAndKnowsLoopbacks) {
  ASSERT_TRUE(splitListen("[::1]:7070"));
  EXPECT_EQ(splitListen("[::1]:7070")->host, "[::1]");
  EXPECT_EQ(splitListen("[::1]:7070")->port, "7070");
  EXPECT_TRUE(splitListen("[::1]:7070")->loopback());
  EXPECT_TRUE(splitListen("127.0.0.2:1")->loopback());
  EXPECT_TRUE(splitListen("localhost:80")->loopback());
  EXPECT_FALSE(splitListen("0.0.0.0:7070")->loopback());
  EXPECT_FALSE(splitListen("db.example.com:7070")->loopback());
  for (const char* bad : {"7070", ":7070", "host:", "host:70a"}) {
    EXPECT_FALSE(splitListen(bad)) << bad;
  }
}

TEST(ConfigHttp, TheTokenIsASecretNeverEchoed) {
  Error e = loadError(withTop("http:\n  token: [not, a, string]\n"));
  EXPECT_FALSE(contains(e.what(), "not, a").operator bool());
}

}  // namespace
}  // namespace tidemark::config

namespace tidemark::config {
namespace {

TEST(ConfigTopics, TablesGetTheirOwnTopicOrThePrefixedName) {
  PipelineConfig c = load(
      "name: shop\n"
      "source:\n"
      "  dsn: \"host=db dbname=shop user=tidemark\"\n"
      "  tables: [public.orders, '\"Sales\".\"Order Items\"']\n"
      "  topics:\n"
      "    '\"Sales\".\"Order Items\"': shop.sales.order_items\n"
      "sinks: [{name: out, kind: stdout}]\n");
  ASSERT_EQ(c.source.topics.size(), 1u);
  EXPECT_EQ(tableTopic(c, {"public", "orders"}), "shop.public.orders");
  EXPECT_EQ(tableTopic(c, {"Sales", "Order Items"}), "shop.sales.order_items");
}

TEST(ConfigTopics, EachCharacterOutsideTheTopicAlphabetBecomesUnderscoresAsInDebezium) {
  EXPECT_EQ(sanitizeTopic("shop.public.Order Items-2_x"), "shop.public.Order_Items-2_x");
  EXPECT_EQ(sanitizeTopic("shop.public.caf\xc3\xa9"), "shop.public.caf_");         // U+00E9
  EXPECT_EQ(sanitizeTopic("shop.public.\xe8\xa1\xa8x"), "shop.public._x");          // U+8868
  EXPECT_EQ(sanitizeTopic("shop.public.\xf0\x9f\x98\x80x"), "shop.public.__x");     // U+1F600
  EXPECT_EQ(sanitizeTopic("shop.public.\xe9t\xe9"), "shop.public._t_");            // LATIN1 bytes
  EXPECT_EQ(sanitizeTopic("shop.public.\xc3"), "shop.public._");                    // cut short
}

TEST(ConfigTopics, TwoTablesOnOneTopicAreRefusedNamingBothAndTheSetting) {
  // 21 three-byte characters each: both sanitize to 21 underscores.
  std::string a, b;
  for (int i = 0; i < 21; ++i) {
    a += "\xe8\xa1\xa8";
    b += "\xe4\xb8\xad";
  }
  const std::string tables = "  tables: ['\"" + a + "\"', '\"" + b + "\"']\n";
  Error e = loadError("name: shop\nsource:\n  dsn: \"host=db dbname=shop user=tidemark\"\n" + tables +
                      "sinks: [{name: out, kind: stdout}]\n");
  EXPECT_TRUE(contains(e.what(), "public." + a));
  EXPECT_TRUE(contains(e.what(), "public." + b));
  EXPECT_TRUE(contains(e.what(), "shop.public.___"));
  EXPECT_TRUE(contains(e.hint(), "source.topics"));

  // A topic of its own for one of them resolves it.
  PipelineConfig c = load("name: shop\nsource:\n  dsn: \"host=db dbname=shop user=tidemark\"\n" + tables +
                          "  topics: {'\"" + b + "\"': shop.public.zhong}\n"
                          "sinks: [{name: out, kind: stdout}]\n");
  EXPECT_EQ(tableTopic(c, {"public", b}), "shop.public.zhong");
}

TEST(ConfigTopics, ATopicSetToAnotherTablesTopicIsRefused) {
  std::string yaml = withSource("  topics: {public.orders: shop.public.customers}\n");
  yaml.replace(yaml.find("[public.orders]"), 15, "[public.orders, public.customers]");
  Error e = loadError(yaml);
  EXPECT_TRUE(contains(e.what(), "would both write topic"));
}

TEST(ConfigTopics, BadTopicsAndTablesOutsideTheListAreRefused) {
  EXPECT_TRUE(contains(loadError(withSource("  topics: {public.orders: 'has space'}\n")).what(),
                       "may only contain"));
  EXPECT_TRUE(contains(loadError(withSource("  topics: {public.other: shop.other}\n")).what(),
                       "is not one of source.tables"));
  EXPECT_TRUE(contains(loadError(withSource("  topics: [shop.other]\n")).what(),
                       "a mapping from table names to topic names"));
}

TEST(ConfigSource, InvalidUtf8IsFailOrEscape) {
  EXPECT_EQ(load(withSource("")).source.invalid_utf8, "fail");
  EXPECT_EQ(load(withSource("  invalid_utf8: escape\n")).source.invalid_utf8, "escape");
  EXPECT_TRUE(contains(loadError(withSource("  invalid_utf8: replace\n")).what(), "is not one of"));
}

}  // namespace
}  // namespace tidemark::config

namespace tidemark::config {
namespace {

TEST(ConfigReject, EveryProblemOfAFileIsReportedAtOnce) {
  Error e = loadError(
      "name: shop\n"
      "source:\n"
      "  dsn: \"host=db dbname=shop pasword=x\"\n"
      "  tables: [public.orders]\n"
      "  slot: Bad-Slot\n"
      "sinks:\n"
      "  - {name: files, kind: jsonl}\n"
      "heartbeat: {interval: 5}\n");
  const std::string what = e.what();
  EXPECT_TRUE(contains(what, "test.yaml: 4 problems:"));
  EXPECT_TRUE(contains(what, "source.dsn: the value (not shown: it may hold a secret) has unknown keyword "
                             "\"pasword\" (did you mean \"password\"?)"));
  EXPECT_TRUE(contains(what, "source.slot:"));
  EXPECT_TRUE(contains(what, "heartbeat.interval:"));
  EXPECT_TRUE(contains(what, "sinks[0].path: required for kind jsonl")) << what;
  EXPECT_EQ(what.find("x\""), std::string::npos) << "the password's value was shown";
}

TEST(ConfigReject, ADoubleQuotedTableInAFlowListSaysToSingleQuoteIt) {
  Error e = loadError(
      "name: shop\nsource:\n  dsn: \"host=db\"\n  tables: [public.a, \"Sales\".\"Order Items\"]\n"
      "sinks: [{name: out, kind: stdout}]\n");
  EXPECT_TRUE(contains(e.what(), "not valid YAML at line 4"));
  EXPECT_TRUE(contains(e.hint(), "wrap it whole in single quotes, tables: [public.a, '\"Sales\".\"Order Items\"']"));
}

TEST(ConfigReject, UnknownDsnKeywordsAreConfigurationErrorsWithTheNearestKeyword) {
  EXPECT_TRUE(contains(loadError(withSource("").replace(withSource("").find("host=db"), 7, "host=db bogus_option=1")).what(),
                       "has unknown keyword \"bogus_option\""));
  EXPECT_TRUE(contains(loadError("name: shop\nsource:\n  dsn: \"postgres://u@db/shop?sslmod=require\"\n"
                                 "  tables: [t]\nsinks: [{name: a, kind: stdout}]\n")
                           .what(),
                       "has unknown keyword \"sslmod\" (did you mean \"sslmode\"?)"));
}

}  // namespace
}  // namespace tidemark::config
