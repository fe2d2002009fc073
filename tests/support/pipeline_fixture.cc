#include "support/pipeline_fixture.h"

#include <signal.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/jsonl.h"
#include "support/poll.h"

namespace tidemark::test {
namespace {

// A name PostgreSQL accepts for a database and, with "_slot" appended, for a replication
// slot (lower case, digits, underscore, at most 63 bytes), derived from the test's name so
// that a leftover object points at the test that made it.
std::string objectNameFor(const ::testing::TestInfo& info) {
  std::string raw = std::string(info.test_suite_name()) + "_" + info.name();
  std::string name;
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    name += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
  }
  constexpr size_t kMax = 50;
  if (name.size() > kMax) {
    char hash[16];
    std::snprintf(hash, sizeof hash, "%08x",
                  static_cast<unsigned>(std::hash<std::string>{}(name) & 0xffffffffu));
    name = name.substr(0, kMax - 9) + "_" + hash;
  }
  return name;
}

// `lines` indented by `indent` spaces, each ending in a newline.
std::string indented(const std::string& lines, int indent) {
  std::string out;
  std::istringstream in(lines);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    out += std::string(static_cast<size_t>(indent), ' ') + line + "\n";
  }
  return out;
}

std::string yamlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out + "]";
}

}  // namespace

uint64_t parseLsn(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) {
    throw std::invalid_argument("not an LSN: '" + text + "'");
  }
  size_t used = 0;
  const uint64_t hi = std::stoull(text.substr(0, slash), &used, 16);
  if (used != slash) throw std::invalid_argument("not an LSN: '" + text + "'");
  const std::string lowText = text.substr(slash + 1);
  const uint64_t lo = std::stoull(lowText, &used, 16);
  if (used != lowText.size()) throw std::invalid_argument("not an LSN: '" + text + "'");
  return (hi << 32) | lo;
}

size_t countLines(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return 0;
  size_t n = 0;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) n += buf[i] == '\n';
  }
  return n;
}

void forEachJsonLine(const std::filesystem::path& file,
                     const std::function<void(const nlohmann::json&)>& fn) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return;
  std::string line;
  size_t lineNo = 0;
  while (std::getline(in, line)) {
    // getline also returns a last line without its newline: one a sink is still writing.
    if (in.eof()) break;
    ++lineNo;
    if (line.empty()) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(lineNo) + ": not JSON: " +
                               e.what());
    }
    fn(doc);
  }
}

std::string tidemarkBinary() {
#ifdef TIDEMARK_BINARY
  return TIDEMARK_BINARY;
#else
  throw std::runtime_error("this test binary was built without TIDEMARK_BINARY");
#endif
}

void PgPipelineTest::SetUp() {
  pg_ = &PgCluster::shared();
  db_ = objectNameFor(*::testing::UnitTest::GetInstance()->current_test_info());
  slot_ = db_ + "_slot";
  pg_->createDatabase(db_);
  tmp_ = std::make_unique<TempDir>("tidemark-" + db_);
}

std::string describeStatus(const StatusResult& s, const std::string& trail) {
  return "last status: " + (s.json ? s.json->dump() : std::string("(no JSON)")) + "\n" +
         (trail.empty() ? "" : "status trail:\n" + trail) + s.description;
}

void PgPipelineTest::startStreaming(const std::filesystem::path& config, std::unique_ptr<Process>& p) {
  p = startRun(config);
  ASSERT_EVENTUALLY(slotActive() || !p->running(), std::chrono::seconds(60)) << p->describe();
  ASSERT_TRUE(p->running()) << p->describe();
}

void PgPipelineTest::killRunsAtRandomMoments(const std::filesystem::path& config, int times, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pause_ms(300, 2500);
  for (int kill = 0; kill < times; ++kill) {
    std::unique_ptr<Process> p = startRun(config);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));  // a random moment to die at
    ASSERT_TRUE(p->running()) << "kill " << kill << " (seed " << seed << "): " << p->describe();
    p->signal(SIGKILL);
    ASSERT_EQ(p->waitExit(std::chrono::seconds(30)), 128 + SIGKILL);
  }
}

void PgPipelineTest::setSystem(const std::string& name, const std::string& value) {
  changed_settings_.push_back(name);
  pg_->setSystem(name, value);
}

void PgPipelineTest::TearDown() {
  // Server settings a test changed are put back before anything else runs.
  for (const auto& name : changed_settings_) {
    try {
      pg_->setSystem(name, std::nullopt);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot reset " << name << ": " << e.what();
    }
  }
  changed_settings_.clear();
  if (HasFailure() && tmp_) {
    tmp_->keep();
    std::cerr << "[ kept     ] config, state and output of the failed test: " << tmp_->path()
              << "\n[ pg log   ]\n"
              << pg_->logTail(3000) << "\n";
  }
  tmp_.reset();
  // Dropping the database also drops its slot, so the WAL a test wrote is not retained
  // for the rest of the run.
  if (pg_ != nullptr && pg_->running()) {
    try {
      pg_->dropDatabase(db_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup of database " << db_ << " failed: " << e.what();
    }
  }
}

std::filesystem::path PgPipelineTest::writeRawConfig(const std::string& yaml,
                                                     const std::string& file) {
  const auto path = tmp_->path() / file;
  std::ofstream out(path, std::ios::trunc);
  out << yaml;
  if (!out) throw std::runtime_error("cannot write " + path.string());
  return path;
}

std::filesystem::path PgPipelineTest::writeConfig(const TidemarkConfig& c,
                                                  const std::string& file) {
  std::string dsn = c.dsn.value_or(pg_->dsn(db_, c.user));
  if (c.dsnPassword) dsn += " password=" + *c.dsnPassword;
  std::ostringstream y;
  y << "name: " << c.name << "\n"
    << "state_dir: " << stateDir().string() << "\n"
    << "source:\n"
    << "  kind: postgres\n"
    << "  dsn: \"" << dsn << "\"\n";
  if (c.password) y << "  password: \"" << *c.password << "\"\n";
  if (c.passwordFile) y << "  password_file: " << *c.passwordFile << "\n";
  y << "  slot: " << slot_ << "\n"
    << "  publication: " << publication() << "\n"
    << "  tables: " << yamlList(c.tables) << "\n"
    << "  snapshot:\n    mode: " << c.snapshot << "\n";
  if (c.snapshotChunkRows) y << "    chunk_rows: " << *c.snapshotChunkRows << "\n";
  if (c.sourceExtra) y << indented(*c.sourceExtra, 2);
  y << "sinks:\n";
  if (c.sinks) {
    y << indented(*c.sinks, 2);
  } else {
    y << "  - name: files\n"
      << "    kind: jsonl\n"
      << "    path: " << outDir().string() << "\n";
    if (c.withKey) y << "    with_key: true\n";
  }
  y << "delivery:\n"
    << "  flush_interval: " << c.flushInterval << "\n";
  if (c.heartbeat) y << "heartbeat:\n" << indented(*c.heartbeat, 2);
  y << "http:\n" << indented(c.http, 2);
  if (c.topLevel) y << indented(*c.topLevel, 0);
  return writeRawConfig(y.str(), file);
}

void PgPipelineTest::initPipeline(const std::filesystem::path& config) {
  RunResult r = runUntil(config, currentLsn());
  ASSERT_EQ(r.exitCode, 0) << "the first run, which creates the slot, failed\n" << r.description;
  ASSERT_TRUE(slotExists()) << "the first run did not create slot " << slot_ << "\n"
                            << r.description;
}

std::unique_ptr<Process> PgPipelineTest::startTidemark(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {tidemarkBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions options;
  options.env = tidemark_env_;
  return std::make_unique<Process>(std::move(argv), std::move(options));
}

std::unique_ptr<Process> PgPipelineTest::startRun(const std::filesystem::path& config,
                                                  const std::optional<std::string>& untilLsn) {
  std::vector<std::string> args = {"run", "-c", config.string()};
  if (untilLsn) {
    args.push_back("--until-lsn");
    args.push_back(*untilLsn);
  }
  return startTidemark(args);
}

RunResult PgPipelineTest::finish(Process& process, std::chrono::milliseconds deadline) {
  RunResult r;
  r.exitCode = process.waitExit(deadline);
  if (!r.exitCode) {
    process.signal(SIGKILL);
    process.waitExit(std::chrono::seconds(10));
    r.description = "did not end within " + std::to_string(deadline.count()) + " ms; killed\n";
    r.exitCode = std::nullopt;
  }
  r.out = process.stdoutText();
  r.err = process.stderrText();
  r.maxRssKiB = process.maxRssKiB();
  r.description += process.describe();
  return r;
}

RunResult PgPipelineTest::runTidemark(const std::vector<std::string>& args,
                                      std::chrono::milliseconds deadline) {
  auto p = startTidemark(args);
  return finish(*p, deadline);
}

RunResult PgPipelineTest::runUntil(const std::filesystem::path& config,
                                   const std::string& untilLsn,
                                   std::chrono::milliseconds deadline) {
  auto p = startRun(config, untilLsn);
  return finish(*p, deadline);
}

std::filesystem::path PgPipelineTest::topicFile(const std::string& table,
                                                const std::string& name) const {
  return outDir() / (name + "." + table + ".jsonl");
}

std::filesystem::path PgPipelineTest::messageFile(const std::string& name) const {
  return outDir() / (name + ".message.jsonl");
}

std::filesystem::path PgPipelineTest::heartbeatFile(const std::string& prefix) const {
  return outDir() / ("__debezium-heartbeat." + prefix + ".jsonl");
}

StatusResult PgPipelineTest::status(const std::filesystem::path& config,
                                    std::chrono::milliseconds deadline) {
  RunResult r = runTidemark({"status", "-c", config.string(), "--json"}, deadline);
  StatusResult s;
  s.exitCode = r.exitCode;
  s.description = r.description;
  try {
    auto doc = nlohmann::json::parse(r.out);
    if (doc.is_object()) s.json = std::move(doc);
  } catch (const nlohmann::json::parse_error&) {
  }
  return s;
}

bool PgPipelineTest::statusEventually(const std::filesystem::path& config,
                                      const std::function<bool(const StatusResult&)>& pred,
                                      std::chrono::milliseconds deadline, StatusResult* last,
                                      std::string* trail, std::chrono::milliseconds step) {
  StatusResult reading;
  std::string previous;
  const auto start = std::chrono::steady_clock::now();
  const bool ok = eventually(
      [&] {
        reading = status(config);
        std::string line = "exit " + (reading.exitCode ? std::to_string(*reading.exitCode)
                                                       : std::string("(none)"));
        if (reading.json) {
          line += ", state " + jsonAt(*reading.json, "state").value_or(nullptr).dump() +
                  ", reason " + jsonAt(*reading.json, "reason").value_or(nullptr).dump();
        } else {
          line += ", no JSON";
        }
        if (trail != nullptr && line != previous) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count();
          *trail += "  +" + std::to_string(ms) + " ms: " + line + "\n";
        }
        previous = line;
        return pred(reading);
      },
      deadline, step);
  if (last != nullptr) *last = std::move(reading);
  return ok;
}

std::optional<nlohmann::json> jsonAt(const nlohmann::json& doc, const std::string& dottedPath) {
  const nlohmann::json* at = &doc;
  size_t pos = 0;
  while (pos <= dottedPath.size()) {
    const size_t dot = dottedPath.find('.', pos);
    const std::string key =
        dottedPath.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (!at->is_object() || !at->contains(key)) return std::nullopt;
    at = &(*at)[key];
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return *at;
}

std::vector<nlohmann::json> PgPipelineTest::events(const std::string& table) const {
  std::vector<nlohmann::json> out;
  for (auto& line : readJsonLines(topicFile(table))) {
    nlohmann::json value =
        (line.is_object() && line.contains("key") && line.contains("value") && line.size() == 2)
            ? line["value"]
            : line;
    if (value.is_null()) continue;
    out.push_back(std::move(value));
  }
  return out;
}

std::vector<nlohmann::json> PgPipelineTest::allEvents() const {
  std::vector<nlohmann::json> out;
  for (auto& [topic, lines] : readJsonLinesDir(outDir())) {
    for (auto& l : lines) out.push_back(l);
  }
  return out;
}

nlohmann::json PgPipelineTest::checkEntry(const std::filesystem::path& config, const std::string& id) {
  RunResult r = runTidemark({"check", "-c", config.string(), "--json"});
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "check printed no JSON: " << e.what() << "\n" << r.description;
    return nullptr;
  }
  for (const auto& c : doc["checks"]) {
    if (c.value("id", "") == id) return c;
  }
  ADD_FAILURE() << "check has no check " << id << "\n" << r.description;
  return nullptr;
}

bool PgPipelineTest::slotExists() {
  return pg_->scalar("postgres", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" +
                                     slot_ + "'") == "1";
}

bool PgPipelineTest::slotActive() {
  return pg_->scalar("postgres",
                     "SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = '" +
                         slot_ + "'") == "1";
}

std::optional<std::string> PgPipelineTest::slotConfirmedFlushLsn() {
  auto rows = pg_->exec("postgres",
                        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
                            slot_ + "'");
  if (rows.empty()) return std::nullopt;
  return rows[0][0];
}

}  // namespace tidemark::test
