#include "sink/postgres/postgres_sink.h"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_reader.h"
#include "core/text_row.h"

namespace tidemark::sinks {

namespace {

using nlohmann::json;

// A batch is applied (sent, not committed) once it holds this much, and a source transaction
// larger than this is sent in parts under a savepoint: memory stays flat.
constexpr uint64_t kApplyBytes = 8ull << 20;

// Up to this many rows, a batch's deletes or upserts of one table go as one multi-row
// statement with parameters; past it, through COPY into a staging table. bench/apply_bench.cc
// measured the two on the benchmark's table: the statement is 2.9x as fast for one row, 1.5x
// for 100, and COPY is 1.1x as fast at 300 and 1.7x at 1,000. New rows go by COPY straight into
// the table from 4 rows on (the two are even at 3).
constexpr size_t kStatementRows = 128;
constexpr size_t kFreshCopyRows = 4;
// PostgreSQL's limit on the parameters of one statement.
constexpr size_t kMaxParams = 65535;

// Whether `rows` rows of `columns` values each go as one statement rather than by COPY.
bool byStatement(size_t rows, size_t columns) {
  return rows <= kStatementRows && rows * std::max<size_t>(columns, 1) <= kMaxParams;
}

// Appends "($n, $n+1, ...)" for `count` parameters numbered from `next` on (updated), with
// `extra` (a literal) last when not empty.
void appendParamRow(std::string& sql, size_t count, size_t& next, std::string_view extra = {}) {
  sql += '(';
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) sql += ", ";
    sql += '$';
    sql += std::to_string(++next);
  }
  if (!extra.empty()) {
    sql += ", ";
    sql += extra;
  }
  sql += ')';
}

std::string quote(std::string_view ident) { return pg::quoteIdentifierText(ident); }

std::string lsnText(uint64_t lsn) { return fmt::format("{:X}/{:X}", lsn >> 32, lsn & 0xFFFFFFFFu); }

// The append mode's columns after the source's.
constexpr const char* kAppendColumns = R"("__op", "__lsn", "__commit_ts", "__txid", "__seq")";

void appendCopyValue(const std::optional<std::string>& v, std::string& out) {
  if (!v) {
    out += "\\N";
  } else {
    pgtext::appendCopyEscaped(*v, out);
  }
}

}  // namespace

struct PostgresSink::Batch {
  struct Table {
    std::vector<Change> slots;                      // upsert: the last state of each key
    std::unordered_map<std::string, size_t> index;  // key -> slot
    std::vector<Change> rows;                       // append: every change, in order
  };
  std::map<Target*, Table> tables;
  uint64_t bytes = 0;
  bool empty() const { return tables.empty(); }
};

PostgresSink::PostgresSink(const config::SinkConfig& cfg, uint64_t max_dead_letters,
                           core::DeadLetters* dead_letters, Logger logger)
    : cfg_(cfg),
      max_dead_letters_(max_dead_letters),
      dead_letters_(dead_letters),
      logger_(std::move(logger)),
      batch_(std::make_unique<Batch>()) {}

PostgresSink::~PostgresSink() = default;

std::string PostgresSink::targetTable(const std::string& schema, const std::string& table) const {
  return quote(cfg_.schema.value_or(schema)) + "." + quote(table);
}

// ---------------------------------------------------------------------------------------------
// The connection

void PostgresSink::connect() {
  if (conn_ && PQstatus(conn_->raw()) == CONNECTION_OK) return;
  conn_.reset();
  conn_.emplace(pg::Connection::open(pg::destinationOptions(cfg_, "tidemark sink " + cfg_.name)));
  // The server's notices ("schema ... already exists, skipping") are not for the operator.
  PQsetNoticeProcessor(conn_->raw(), [](void*, const char*) {}, nullptr);
  for (auto& [name, target] : targets_) {
    target->stage.clear();  // temporary tables went with the old session
  }
}

void PostgresSink::disconnect() {
  conn_.reset();
  in_transaction_ = false;
}

void PostgresSink::begin() {
  if (in_transaction_) return;
  connect();
  // The lock keeps `tidemark dlq retry` from applying an old change between two of the sink's.
  exec(fmt::format("BEGIN; SELECT pg_advisory_xact_lock(hashtext({}))", pg::quoteLiteralText("tidemark.sink:" + cfg_.name)),
       "starting a destination transaction");
  in_transaction_ = true;
}

void PostgresSink::exec(const std::string& sql, std::string_view what) {
  try {
    conn_->exec(sql, what);
  } catch (const pg::ServerError& e) {
    rethrow(e, false);
  }
}

void PostgresSink::rethrow(const pg::ServerError& e, bool rows) {
  const std::string& state = e.sqlstate();
  const std::string cls = state.substr(0, std::min<size_t>(2, state.size()));
  const std::string message = fmt::format("sink \"{}\": {}", cfg_.name, e.what());
  if (conn_ && PQstatus(conn_->raw()) != CONNECTION_OK) disconnect();
  if (e.retriable() || state == "55P03" || cls == "40") throw Error(ErrorClass::Retriable, message, e.hint());
  if (rows && (cls == "22" || cls == "23")) {
    poisoned_ = true;
    throw Error(ErrorClass::Poison, message, e.hint());
  }
  if (cls == "42" || cls == "28") {
    throw Error(ErrorClass::Config, message,
                e.hint().empty() ? fmt::format("grant the user of sinks[].dsn what the statement needs "
                                               "(CREATE on the database and schema, INSERT, UPDATE, DELETE, "
                                               "TRUNCATE on the tables), or create what is missing at the "
                                               "destination; then run again")
                                 : e.hint());
  }
  throw Error(ErrorClass::Fatal, message, e.hint());
}

bool PostgresSink::copyIn(const std::string& sql, const std::string& data, std::string_view what, bool unique_ok) {
  PGconn* c = conn_->raw();
  pg::Result r(PQexec(c, sql.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) {
    if (!r || PQstatus(c) != CONNECTION_OK) {
      throw Error(ErrorClass::Retriable, fmt::format("sink \"{}\": {} failed: connection lost: {}", cfg_.name, what,
                                                     conn_->lastError()));
    }
    rethrow(pg::errorFromResult(r.get(), what), true);
  }
  r.reset();
  bool sent = PQputCopyData(c, data.data(), static_cast<int>(data.size())) == 1 && PQputCopyEnd(c, nullptr) == 1;
  std::optional<pg::ServerError> failure;
  while (PGresult* raw = PQgetResult(c)) {
    pg::Result res(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && !failure) failure = pg::errorFromResult(raw, what);
  }
  if (failure && unique_ok && failure->sqlstate() == "23505") return false;
  if (failure) rethrow(*failure, true);
  if (!sent) {
    disconnect();
    throw Error(ErrorClass::Retriable, fmt::format("sink \"{}\": {} failed: {}", cfg_.name, what, conn_ ? conn_->lastError() : "connection lost"));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Recovery and progress

std::optional<uint64_t> PostgresSink::recover(const std::optional<std::string>& checkpoint, RecoverMode mode) {
  connect();
  try {
    conn_->exec(
        "CREATE SCHEMA IF NOT EXISTS tidemark; "
        "CREATE TABLE IF NOT EXISTS tidemark.sink_progress (sink text PRIMARY KEY, log_cursor bigint NOT NULL, "
        "updated_at timestamptz NOT NULL); "
        "CREATE TABLE IF NOT EXISTS tidemark.sink_superseded (sink text, target text, key text, "
        "log_offset bigint NOT NULL, PRIMARY KEY (sink, target, key))",
        "creating tidemark.sink_progress at the destination");
  } catch (const pg::ServerError& e) {
    rethrow(e, false);
  }
  pg::Result r = conn_->execParams("SELECT log_cursor FROM tidemark.sink_progress WHERE sink = $1", {cfg_.name},
                                   "reading the sink's progress at the destination");
  std::optional<uint64_t> stands;
  if (PQntuples(r.get()) == 1) stands = std::stoull(PQgetvalue(r.get(), 0, 0));
  if (dead_letters_ != nullptr) {
    for (const core::DeadLetter& d : dead_letters_->list(cfg_.name, {})) {
      if (d.state == "pending") dead_keys_[{d.table, d.key}] = d.offset;
    }
  }
  switch (mode) {
    case RecoverMode::FirstRun:
      if (stands) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\": the destination already holds the progress of a sink of that name "
                                "(change-log offset {}), but the state directory is new: its rows cannot be tied to "
                                "this change log",
                                cfg_.name, *stands),
                    fmt::format("to keep the destination's rows and deliver everything the log holds over them, run "
                                "with --reset-sink {}; to start afresh, empty the destination tables and DELETE FROM "
                                "tidemark.sink_progress WHERE sink = '{}' there",
                                cfg_.name, cfg_.name));
      }
      // From now on the destination says where the sink stands.
      conn_->execParams("INSERT INTO tidemark.sink_progress (sink, log_cursor, updated_at) VALUES ($1, 0, now())",
                        {cfg_.name}, "saving the sink's progress at the destination");
      durable_cursor_ = 0;
      return std::nullopt;
    case RecoverMode::Resume:
      if (!stands && checkpoint.value_or("0") != "0") {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\": the state directory says the destination holds changes up to change-log "
                                "offset {}, but the destination has no progress row for the sink "
                                "(tidemark.sink_progress): it was restored, rebuilt or pointed elsewhere",
                                cfg_.name, checkpoint.value_or("?")),
                    fmt::format("run with --reset-sink {} to deliver everything the change log holds over what the "
                                "destination has, then compare with tidemark verify",
                                cfg_.name));
      }
      durable_cursor_ = stands.value_or(0);
      return stands;
    case RecoverMode::Added:
      durable_cursor_ = stands.value_or(0);
      return stands;
    case RecoverMode::Reset:
      return std::nullopt;
  }
  return std::nullopt;
}

void PostgresSink::flush() {
  apply(*batch_);
  if (marked_cursor_ == durable_cursor_ && !in_transaction_) return;
  begin();
  try {
    conn_->execParams(
        "INSERT INTO tidemark.sink_progress (sink, log_cursor, updated_at) VALUES ($1, $2, now()) "
        "ON CONFLICT (sink) DO UPDATE SET log_cursor = EXCLUDED.log_cursor, updated_at = EXCLUDED.updated_at",
        {cfg_.name, std::to_string(marked_cursor_)}, "saving the sink's progress at the destination");
  } catch (const pg::ServerError& e) {
    rethrow(e, false);
  }
  exec("COMMIT", "committing at the destination");
  in_transaction_ = false;
  durable_cursor_ = marked_cursor_;
  pending_bytes_ = 0;
  if (isolating_) logger_.info("the rows after the rejected change apply in batches again");
  isolating_ = false;
}

void PostgresSink::reset() {
  if (conn_ && in_transaction_) {
    try {
      conn_->exec("ROLLBACK", "rolling back at the destination");
    } catch (const Error&) {
      disconnect();
    }
  }
  in_transaction_ = false;
  savepoint_ = false;
  if (poisoned_ && !isolating_) {
    logger_.info("a batch was rejected: applying change by change from change-log offset {} to the next commit, "
                 "to set aside the change the destination rejects",
                 durable_cursor_);
  }
  isolating_ = isolating_ || poisoned_;
  poisoned_ = false;
  batch_ = std::make_unique<Batch>();
  open_.clear();
  open_bytes_ = 0;
  seq_ = 0;
  pending_bytes_ = 0;
  marked_cursor_ = durable_cursor_;
  // What this transaction created is gone: look again.
  for (auto& [name, target] : targets_) {
    target->columns.clear();
    target->by_name.clear();
    target->stage.clear();
    ++target->epoch;
  }
}

void PostgresSink::rollbackTo(const std::string&) { reset(); }

void PostgresSink::rollbackToMark() {
  open_.clear();
  open_bytes_ = 0;
  seq_ = 0;
  if (!savepoint_) return;
  // Part of the transaction was sent: take it back.
  exec("ROLLBACK TO SAVEPOINT tm_txn; RELEASE SAVEPOINT tm_txn", "dropping a transaction at the destination");
  savepoint_ = false;
  for (auto& [name, target] : targets_) {
    target->columns.clear();
    target->by_name.clear();
    target->stage.clear();
    ++target->epoch;
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas and tables

void PostgresSink::tableSchema(std::string_view topic, std::string_view version, std::string_view text) {
  if (schemas_.count(std::string(version)) != 0) return;
  json doc = json::parse(text);
  Schema s;
  s.topic = topic;
  s.version = version;
  s.schema = doc.at("schema").get<std::string>();
  s.table = doc.at("table").get<std::string>();
  s.json = text;
  s.postgres_text = doc.value("text_form", "") == "postgresql";
  for (const auto& c : doc.at("columns")) {
    Column col;
    col.name = c.at("name").get<std::string>();
    col.quoted = quote(col.name);
    col.type = c.at("type").is_string() ? c.at("type").get<std::string>() : "text";
    col.form.value = c.value("value", "text");
    col.form.element = c.value("element", "");
    col.form.typmod = c.value("typmod", -1);
    col.form.varying = col.type.starts_with("bit varying");
    col.key = c.value("key", false);
    if (col.key) s.key.push_back(s.columns.size());
    s.columns.push_back(std::move(col));
  }
  schemas_.emplace(s.version, std::move(s));
}

PostgresSink::Target& PostgresSink::ensureTarget(const Schema& schema) {
  // Checked already, and nothing changed the target since.
  if (schema.target != nullptr && schema.target->epoch == schema.target_epoch) return *schema.target;
  Target& t = checkTarget(schema);
  schema.target = &t;
  schema.target_epoch = t.epoch;
  return t;
}

PostgresSink::Target& PostgresSink::checkTarget(const Schema& schema) {
  const std::string qualified = targetTable(schema.schema, schema.table);
  auto& slot = targets_[qualified];
  if (!slot) slot = std::make_unique<Target>();
  Target& t = *slot;
  t.qualified = qualified;
  bool known = !t.columns.empty();
  for (const Column& c : schema.columns) {
    auto it = t.by_name.find(c.name);
    if (it == t.by_name.end() || t.columns[it->second].type != c.type) known = false;
  }
  if (known) return t;
  if (cfg_.mode == "upsert" && schema.key.empty()) {
    throw Error(ErrorClass::Config,
                fmt::format("sink \"{}\": table {}.{} has no primary key, so upsert mode cannot tell its rows apart",
                            cfg_.name, quote(schema.schema), quote(schema.table)),
                "give the source table a primary key (or REPLICA IDENTITY USING INDEX on a unique index), or "
                "deliver it with a sink in mode: append");
  }
  begin();
  // What the destination has now.
  pg::Result r;
  try {
    r = conn_->execParams(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        {qualified}, "reading the destination table's columns");
  } catch (const pg::ServerError& e) {
    rethrow(e, false);
  }
  std::map<std::string, std::string> existing;
  for (int i = 0; i < PQntuples(r.get()); ++i) existing[PQgetvalue(r.get(), i, 0)] = PQgetvalue(r.get(), i, 1);
  if (existing.empty()) {
    std::vector<std::string> defs;
    std::vector<std::string> key;
    for (const Column& c : schema.columns) {
      defs.push_back(fmt::format("{} {}", c.quoted, c.type));
      if (c.key) key.push_back(c.quoted);
    }
    if (cfg_.mode == "append") {
      defs.insert(defs.end(), {R"("__op" text)", R"("__lsn" pg_lsn)", R"("__commit_ts" timestamptz)",
                               R"("__txid" bigint)", R"("__seq" bigint)"});
    } else {
      if (cfg_.soft_delete) defs.emplace_back(R"("__deleted" boolean NOT NULL DEFAULT false)");
      defs.push_back(fmt::format("PRIMARY KEY ({})", fmt::join(key, ", ")));
    }
    exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {} ({})", quote(cfg_.schema.value_or(schema.schema)),
                     qualified, fmt::join(defs, ", ")),
         fmt::format("creating table {} at the destination", qualified));
    logger_.info("created table {} at the destination ({} mode)", qualified, cfg_.mode);
    for (const Column& c : schema.columns) existing[c.name] = c.type;
  } else {
    if (cfg_.soft_delete && existing.count("__deleted") == 0) {
      exec(fmt::format(R"(ALTER TABLE {} ADD COLUMN "__deleted" boolean NOT NULL DEFAULT false)", qualified),
           "adding __deleted at the destination");
    }
    for (const Column& c : schema.columns) {
      auto it = existing.find(c.name);
      if (it == existing.end()) {
        exec(fmt::format("ALTER TABLE {} ADD COLUMN {} {}", qualified, c.quoted, c.type),
             fmt::format("adding column {} to {} at the destination", c.quoted, qualified));
        logger_.info("added column {} {} to {} at the destination, as the source did", c.quoted, c.type, qualified);
        existing[c.name] = c.type;
      } else if (it->second != c.type) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\": column {} of {} is {} at the source but {} at the destination",
                                cfg_.name, c.quoted, qualified, c.type, it->second),
                    fmt::format("change it at the destination (ALTER TABLE {} ALTER COLUMN {} TYPE {} USING ...), "
                                "then run again: the sink goes on from the first change with the new type",
                                qualified, c.quoted, c.type));
      }
    }
  }
  // The target's columns: the union of every version seen, in the order they came.
  for (const Column& c : schema.columns) {
    auto it = t.by_name.find(c.name);
    if (it == t.by_name.end()) {
      t.by_name[c.name] = t.columns.size();
      t.columns.push_back(c);
    } else {
      t.columns[it->second] = c;
    }
  }
  t.key.clear();
  for (size_t k : schema.key) t.key.push_back(t.by_name[schema.columns[k].name]);
  ++t.epoch;
  return t;
}

void PostgresSink::stageFor(Target& t) {
  if (!t.stage.empty() && t.stage_columns == t.columns.size()) return;
  t.stage = fmt::format("tm_stage_{}", ++stage_seq_);
  std::vector<std::string> cols;
  for (const Column& c : t.columns) cols.push_back(c.quoted);
  exec(fmt::format("CREATE TEMPORARY TABLE {} AS SELECT {} FROM {} WITH NO DATA", t.stage, fmt::join(cols, ", "),
                   t.qualified),
       "creating a staging table at the destination");
  t.stage_columns = t.columns.size();
}

// ---------------------------------------------------------------------------------------------
// Changes

std::optional<PostgresSink::Change> PostgresSink::parse(const core::Event& event) {
  if (event.schema_version.empty() || event.value == "null") return std::nullopt;  // not a row; a tombstone
  // Runs of events of one table are the rule: look the version up once per run.
  if (last_schema_ == nullptr || last_schema_->version != event.schema_version) {
    auto found = schemas_.find(std::string(event.schema_version));
    last_schema_ = found != schemas_.end() ? &found->second : nullptr;
  }
  if (last_schema_ == nullptr) {
    throw Error(ErrorClass::Fatal,
                fmt::format("sink \"{}\": an event of {} refers to table schema {}, which the change log did not "
                            "hold before it",
                            cfg_.name, event.topic, event.schema_version),
                "the change log is damaged; this is a bug in tidemark, please report it");
  }
  const Schema& schema = *last_schema_;
  // The source's own text of the row, when it is PostgreSQL's: written as it is. Otherwise the
  // values come from the event's JSON, turned back into PostgreSQL's text forms.
  const bool from_text = schema.postgres_text && !event.text.empty();
  core::TextRowReader text_row(event.text, event.value);
  jsonr::Value before, after, source;
  char op = 0;
  if (from_text) op = text_row.op().value_or(0);
  if (!from_text || cfg_.mode == "append") {
    const jsonr::Value doc = jsonr::document(event.value);
    jsonr::Value op_value;
    for (jsonr::Members m(doc); m.next();) {
      const std::string_view k = m.rawKey();
      if (k == "op") {
        op_value = m.value();
      } else if (k == "before") {
        before = m.value();
      } else if (k == "after") {
        after = m.value();
      } else if (k == "source") {
        source = m.value();
      }
    }
    if (!from_text) {
      const std::string op_text = op_value.string();
      op = op_text.size() == 1 ? op_text[0] : 0;
    }
  }
  if (op == 0 || std::string_view("cudrt").find(op) == std::string_view::npos) return std::nullopt;
  Change c;
  c.op = op;
  c.schema = &schema;
  c.target = &ensureTarget(schema);
  Target& t = *c.target;
  // Where each of the version's columns is in the target.
  if (schema.mapped_epoch != t.epoch) {
    schema.to_target.clear();
    for (const Column& col : schema.columns) schema.to_target.push_back(t.by_name.at(col.name));
    schema.mapped_epoch = t.epoch;
  }
  c.values.assign(t.columns.size(), std::nullopt);
  c.present.assign(t.columns.size(), true);  // a column the version lacks (dropped) is NULL
  c.offset = event.offset;
  c.key = event.key;
  if (c.op != 't') {
    // Whether column i's value is to be left as the destination has it (a delete's non-key
    // columns in upsert mode; a value the source did not resend).
    auto leave = [&](size_t i, bool unchanged) {
      const Column& col = schema.columns[i];
      if (c.op == 'd' && !col.key && cfg_.mode == "upsert") return true;
      if (!unchanged) return false;
      if (col.key && c.op != 'd' && cfg_.mode == "upsert") {
        throw Error(ErrorClass::Poison,
                    fmt::format("sink \"{}\": the source did not resend key column {} of {}", cfg_.name, col.quoted,
                                t.qualified),
                    "set REPLICA IDENTITY FULL on the source table so that its key is always sent");
      }
      return true;
    };
    if (from_text) {
      core::TextRowReader::Cell cell;
      size_t i = 0;
      for (; i < schema.columns.size() && text_row.next(cell); ++i) {
        const size_t ti = schema.to_target[i];
        if (leave(i, cell.state == core::Value::State::Unchanged)) {
          c.present[ti] = false;
        } else if (cell.state == core::Value::State::Present) {
          c.values[ti].emplace(cell.text);
        }
      }
      if (text_row.malformed() || i != schema.columns.size()) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\": the record at offset {} of the change log carries a damaged row "
                                "(header tidemark.text)",
                                cfg_.name, event.offset),
                    "the change log is damaged; this is a bug in tidemark, please report it");
      }
    } else {
      const jsonr::Value& image = c.op == 'd' ? before : after;
      if (image.kind != jsonr::Kind::Object) {
        throw Error(ErrorClass::Poison,
                    fmt::format("sink \"{}\": a change of {} without its row image", cfg_.name, t.qualified));
      }
      // The image's fields, in order: Debezium writes them in the table's column order.
      fields_.clear();
      for (jsonr::Members m(image); m.next();) {
        fields_.push_back(Field{m.keyEscaped() ? m.key() : std::string(), m.rawKey(), m.keyEscaped(), m.value()});
      }
      auto field = [&](size_t i, const std::string& name) -> const jsonr::Value* {
        auto matches = [&](const Field& f) { return f.escaped ? f.key == name : f.raw_key == name; };
        if (i < fields_.size() && matches(fields_[i])) return &fields_[i].value;
        for (const Field& f : fields_) {
          if (matches(f)) return &f.value;
        }
        return nullptr;
      };
      unchanged_.assign(schema.columns.size(), false);
      for (std::string_view rest = event.unchanged; !rest.empty();) {
        const size_t comma = rest.find(',');
        const size_t i = std::stoul(std::string(rest.substr(0, comma)));
        if (i < unchanged_.size()) unchanged_[i] = true;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
      for (size_t i = 0; i < schema.columns.size(); ++i) {
        const Column& col = schema.columns[i];
        const size_t ti = schema.to_target[i];
        if (leave(i, unchanged_[i])) {
          c.present[ti] = false;
          continue;
        }
        const jsonr::Value* v = field(i, col.name);
        if (v == nullptr || v->isNull()) continue;
        std::string text;
        try {
          pgtext::append(col.form, *v, text);
        } catch (const Error& e) {
          throw Error(ErrorClass::Poison,
                      fmt::format("sink \"{}\": column {} of {}: {}", cfg_.name, col.quoted, t.qualified, e.what()));
        }
        c.values[ti] = std::move(text);
      }
    }
  }
  if (cfg_.mode == "append" && source.kind == jsonr::Kind::Object) {
    for (jsonr::Members m(source); m.next();) {
      const std::string_view k = m.rawKey();
      const jsonr::Value& v = m.value();
      if (v.kind != jsonr::Kind::Number) continue;
      if (k == "lsn") {
        uint64_t lsn = 0;
        if (std::from_chars(v.raw.data(), v.raw.data() + v.raw.size(), lsn).ec == std::errc()) c.lsn = lsnText(lsn);
      } else if (k == "ts_ms") {
        int64_t ms = 0;
        if (std::from_chars(v.raw.data(), v.raw.data() + v.raw.size(), ms).ec == std::errc()) {
          c.commit_ts = pgtext::timestampText(ms * 1000) + "+00";
        }
      } else if (k == "txId") {
        c.txid = v.raw;
      }
    }
  }
  c.seq = seq_++;
  if (isolating_ || !dead_keys_.empty()) {
    // What a dead letter keeps of it.
    c.topic = event.topic;
    c.event_value = event.value;
    c.unchanged = event.unchanged;
  }
  c.bytes = event.value.size() + event.key.size();
  return c;
}

void PostgresSink::write(const core::Event& event) {
  std::optional<Change> c;
  try {
    c = parse(event);
  } catch (const Error& e) {
    if (e.errorClass() != ErrorClass::Poison) throw;
    if (!isolating_) {
      poisoned_ = true;
      throw;
    }
    // A value that cannot be written: set aside without trying.
    Change rejected;
    rejected.offset = event.offset;
    rejected.topic = event.topic;
    rejected.key = event.key;
    rejected.event_value = event.value;
    rejected.unchanged = event.unchanged;
    auto found = schemas_.find(std::string(event.schema_version));
    if (found != schemas_.end()) rejected.schema = &found->second;
    setAside(rejected, e);
    return;
  }
  if (!c) return;
  open_bytes_ += c->bytes;
  pending_bytes_ += c->bytes;
  open_.push_back(std::move(*c));
  if (open_bytes_ < kApplyBytes) return;
  // A large transaction: send what came before it, then its first part, under a savepoint.
  begin();
  if (!savepoint_) {
    apply(*batch_);
    exec("SAVEPOINT tm_txn", "marking a transaction's start at the destination");
    savepoint_ = true;
  }
  if (isolating_) {
    applyIsolated(open_);
  } else {
    Batch part;
    for (Change& ch : open_) fold(part, std::move(ch));
    apply(part);
  }
  open_.clear();
  open_bytes_ = 0;
}

void PostgresSink::markTransactionEnd(uint64_t cursor) {
  if (isolating_) {
    if (!open_.empty()) {
      begin();
      applyIsolated(open_);
    }
  } else {
    for (Change& ch : open_) fold(*batch_, std::move(ch));
  }
  open_.clear();
  open_bytes_ = 0;
  seq_ = 0;
  if (savepoint_) {
    exec("RELEASE SAVEPOINT tm_txn", "ending a transaction at the destination");
    savepoint_ = false;
  }
  marked_cursor_ = cursor;
  if (batch_->bytes >= kApplyBytes) apply(*batch_);
}

void PostgresSink::fold(Batch& batch, Change&& c) {
  Target* t = c.target;
  if (c.op == 't' && cfg_.mode == "upsert") {
    // Everything before it first.
    apply(batch);
    applyTruncate(*t);
    return;
  }
  batch.bytes += c.bytes;
  Batch::Table& table = batch.tables[t];
  if (cfg_.mode == "append") {
    table.rows.push_back(std::move(c));
    return;
  }
  auto [it, inserted] = table.index.try_emplace(c.key, table.slots.size());
  if (inserted) {
    c.fresh = c.op == 'c' || c.op == 'r';  // a snapshot's row is new as far as the source knows
    table.slots.push_back(std::move(c));
    return;
  }
  Change& slot = table.slots[it->second];
  if (c.op == 'd' && cfg_.soft_delete && slot.op != 'd') {
    // Soft deletes keep the row: the one this batch wrote, marked.
    slot.soft_deleted = true;
    slot.offset = c.offset;
    return;
  }
  if (c.op == 'd' || slot.op == 'd' || slot.soft_deleted) {
    const bool fresh = slot.fresh;  // a property of the key before the batch
    slot = std::move(c);
    slot.fresh = fresh;
    return;
  }
  // An update over the key's earlier state in this batch: the columns it carries win.
  slot.values.resize(t->columns.size());
  slot.present.resize(t->columns.size(), true);
  for (size_t i = 0; i < c.values.size(); ++i) {
    if (!c.present[i]) continue;
    slot.values[i] = std::move(c.values[i]);
    slot.present[i] = true;
  }
  slot.op = c.op;
  slot.offset = c.offset;
}

void PostgresSink::apply(Batch& batch) {
  if (batch.empty()) return;
  begin();
  for (auto& [target, table] : batch.tables) {
    if (cfg_.mode == "append") {
      applyAppend(*target, table.rows);
      noteKeysApplied(table.rows);
    } else {
      applyUpsert(*target, table.slots);
      noteKeysApplied(table.slots);
    }
  }
  batch.tables.clear();
  batch.bytes = 0;
}

void PostgresSink::applyUpsert(Target& t, std::vector<Change>& slots) {
  if (slots.empty()) return;
  // Rows the destination did not have before the batch go straight into the table by COPY,
  // the cheapest way in; should one be there after all (its output reset, rows written at the
  // destination), the COPY is taken back and they go the upsert way with the rest.
  std::string data;
  std::vector<std::string> all_cols;
  for (const Column& col : t.columns) all_cols.push_back(col.quoted);
  size_t fresh = 0;
  for (Change& c : slots) {
    if (c.op == 'd' || !c.fresh || c.soft_deleted) {
      c.fresh = false;
      continue;
    }
    c.values.resize(t.columns.size());
    c.present.resize(t.columns.size(), true);
    if (std::find(c.present.begin(), c.present.end(), false) != c.present.end()) {
      c.fresh = false;
      continue;
    }
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (i > 0) data += '\t';
      appendCopyValue(c.values[i], data);
    }
    data += '\n';
    ++fresh;
  }
  if (fresh > 0 && fresh < kFreshCopyRows) {
    // Too few for COPY to pay: they go with the rest.
    for (Change& c : slots) c.fresh = false;
  } else if (fresh > 0) {
    exec("SAVEPOINT tm_fresh", "marking new rows at the destination");
    if (copyIn(fmt::format("COPY {} ({}) FROM STDIN", t.qualified, fmt::join(all_cols, ", ")), data,
               fmt::format("copying new rows into {}", t.qualified), true)) {
      exec("RELEASE SAVEPOINT tm_fresh", "keeping new rows at the destination");
      if (fresh == slots.size()) return;
    } else {
      exec("ROLLBACK TO SAVEPOINT tm_fresh; RELEASE SAVEPOINT tm_fresh", "taking new rows back at the destination");
      for (Change& c : slots) c.fresh = false;
    }
  }
  std::vector<std::string> key_cols;
  std::vector<std::string> join;
  for (size_t k : t.key) {
    key_cols.push_back(t.columns[k].quoted);
    join.push_back(fmt::format("t.{0} = s.{0}", t.columns[k].quoted));
  }
  // Deletes: a few by one statement; more through the staging table, then one statement.
  size_t deletes = 0;
  for (const Change& c : slots) deletes += c.op == 'd' ? 1 : 0;
  data.clear();
  if (deletes > 0 && byStatement(deletes, t.key.size())) {
    std::string keys;
    std::vector<std::optional<std::string>> params;
    size_t n = 0;
    for (const Change& c : slots) {
      if (c.op != 'd') continue;
      if (!keys.empty()) keys += ", ";
      appendParamRow(keys, t.key.size(), n);
      for (size_t k : t.key) params.push_back(c.values[k]);
    }
    const std::string where = fmt::format("({}) IN ({})", fmt::join(key_cols, ", "), keys);
    try {
      conn_->execParams(cfg_.soft_delete ? fmt::format(R"(UPDATE {} SET "__deleted" = true WHERE {})", t.qualified, where)
                                         : fmt::format("DELETE FROM {} WHERE {}", t.qualified, where),
                        params, fmt::format("deleting rows of {}", t.qualified));
    } catch (const pg::ServerError& e) {
      rethrow(e, true);
    }
  } else if (deletes > 0) {
    stageFor(t);
    for (const Change& c : slots) {
      if (c.op != 'd') continue;
      for (size_t i = 0; i < t.key.size(); ++i) {
        if (i > 0) data += '\t';
        appendCopyValue(c.values[t.key[i]], data);
      }
      data += '\n';
    }
  }
  if (!data.empty()) {
    copyIn(fmt::format("COPY {} ({}) FROM STDIN", t.stage, fmt::join(key_cols, ", ")), data,
           fmt::format("copying deleted keys of {}", t.qualified));
    try {
      conn_->exec(cfg_.soft_delete
                      ? fmt::format(R"(UPDATE {} t SET "__deleted" = true FROM {} s WHERE {}; TRUNCATE {})", t.qualified,
                                    t.stage, fmt::join(join, " AND "), t.stage)
                      : fmt::format("DELETE FROM {} t USING {} s WHERE {}; TRUNCATE {}", t.qualified, t.stage,
                                    fmt::join(join, " AND "), t.stage),
                  fmt::format("deleting rows of {}", t.qualified));
    } catch (const pg::ServerError& e) {
      rethrow(e, true);
    }
  }
  // Rows, by the columns they carry, and (soft_delete) whether they are marked deleted.
  std::map<std::pair<std::vector<bool>, bool>, std::vector<const Change*>> groups;
  for (Change& c : slots) {
    if (c.op == 'd' || c.fresh) continue;
    c.values.resize(t.columns.size());
    c.present.resize(t.columns.size(), true);
    groups[{c.present, c.soft_deleted}].push_back(&c);
  }
  for (const auto& [group, rows] : groups) {
    const auto& [present, soft_deleted] = group;
    std::vector<std::string> cols;
    std::vector<std::string> sets;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (!present[i]) continue;
      cols.push_back(t.columns[i].quoted);
      if (!t.columns[i].key) sets.push_back(fmt::format("{0} = EXCLUDED.{0}", t.columns[i].quoted));
    }
    std::string insert_cols = fmt::format("{}", fmt::join(cols, ", "));
    std::string select_cols = insert_cols;
    if (cfg_.soft_delete) {
      insert_cols += R"(, "__deleted")";
      select_cols += soft_deleted ? ", true" : ", false";
      sets.emplace_back(soft_deleted ? R"("__deleted" = true)" : R"("__deleted" = false)");
    }
    const std::string action = sets.empty() ? "DO NOTHING" : fmt::format("DO UPDATE SET {}", fmt::join(sets, ", "));
    if (byStatement(rows.size(), cols.size())) {
      // A few: one INSERT ... VALUES with the values as parameters.
      std::string values;
      std::vector<std::optional<std::string>> params;
      size_t n = 0;
      const std::string_view mark = !cfg_.soft_delete ? "" : soft_deleted ? "true" : "false";
      for (const Change* c : rows) {
        if (!values.empty()) values += ", ";
        appendParamRow(values, cols.size(), n, mark);
        for (size_t i = 0; i < t.columns.size(); ++i) {
          if (present[i]) params.push_back(c->values[i]);
        }
      }
      try {
        conn_->execParams(fmt::format("INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) {}", t.qualified, insert_cols,
                                      values, fmt::join(key_cols, ", "), action),
                          params, fmt::format("writing rows of {}", t.qualified));
      } catch (const pg::ServerError& e) {
        rethrow(e, true);
      }
      continue;
    }
    stageFor(t);
    data.clear();
    for (const Change* c : rows) {
      bool first = true;
      for (size_t i = 0; i < t.columns.size(); ++i) {
        if (!present[i]) continue;
        if (!first) data += '\t';
        first = false;
        appendCopyValue(c->values[i], data);
      }
      data += '\n';
    }
    copyIn(fmt::format("COPY {} ({}) FROM STDIN", t.stage, fmt::join(cols, ", ")), data,
           fmt::format("copying rows of {}", t.qualified));
    try {
      conn_->exec(fmt::format("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}; TRUNCATE {}", t.qualified,
                              insert_cols, select_cols, t.stage, fmt::join(key_cols, ", "), action, t.stage),
                  fmt::format("writing rows of {}", t.qualified));
    } catch (const pg::ServerError& e) {
      rethrow(e, true);
    }
  }
}

void PostgresSink::applyAppend(Target& t, const std::vector<Change>& rows) {
  if (rows.empty()) return;
  std::vector<std::string> cols;
  for (const Column& c : t.columns) cols.push_back(c.quoted);
  std::string data;
  for (const Change& c : rows) {
    for (size_t i = 0; i < t.columns.size(); ++i) {
      appendCopyValue(i < c.values.size() && (i >= c.present.size() || c.present[i]) ? c.values[i] : std::nullopt,
                      data);
      data += '\t';
    }
    data += c.op;
    data += '\t';
    data += c.lsn.empty() ? "\\N" : c.lsn;
    data += '\t';
    data += c.commit_ts.empty() ? "\\N" : c.commit_ts;
    data += '\t';
    data += c.txid.empty() ? "\\N" : c.txid;
    data += '\t';
    data += std::to_string(c.seq);
    data += '\n';
  }
  copyIn(fmt::format("COPY {} ({}, {}) FROM STDIN", t.qualified, fmt::join(cols, ", "), kAppendColumns), data,
         fmt::format("appending rows to {}", t.qualified));
}

void PostgresSink::applyTruncate(Target& t) {
  if (!cfg_.truncate) return;
  begin();
  try {
    conn_->exec(cfg_.soft_delete ? fmt::format(R"(UPDATE {} SET "__deleted" = true)", t.qualified)
                                 : fmt::format("TRUNCATE {}", t.qualified),
                fmt::format("truncating {}", t.qualified));
  } catch (const pg::ServerError& e) {
    rethrow(e, true);
  }
}

void PostgresSink::noteKeysApplied(const std::vector<Change>& changes) {
  if (dead_keys_.empty()) return;
  for (const Change& c : changes) {
    auto it = dead_keys_.find({c.target->qualified, c.key});
    if (it == dead_keys_.end() || c.offset <= it->second) continue;
    try {
      conn_->execParams(
          "INSERT INTO tidemark.sink_superseded (sink, target, key, log_offset) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (sink, target, key) DO UPDATE SET log_offset = greatest(tidemark.sink_superseded.log_offset, "
          "EXCLUDED.log_offset)",
          {cfg_.name, c.target->qualified, c.key, std::to_string(c.offset)}, "noting a newer change of a set-aside key");
    } catch (const pg::ServerError& e) {
      rethrow(e, false);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rejected changes

void PostgresSink::applyOne(Change& c) {
  Batch one;
  fold(one, std::move(c));  // a truncate is applied by fold itself
  apply(one);
}

void PostgresSink::applyIsolated(std::vector<Change>& changes) {
  for (Change& c : changes) {
    exec("SAVEPOINT tm_row", "marking a change at the destination");
    Change copy = c;
    try {
      applyOne(c);
      exec("RELEASE SAVEPOINT tm_row", "applying a change at the destination");
    } catch (const Error& e) {
      if (e.errorClass() != ErrorClass::Poison) throw;
      exec("ROLLBACK TO SAVEPOINT tm_row; RELEASE SAVEPOINT tm_row", "setting a change aside at the destination");
      for (auto& [name, target] : targets_) target->stage.clear();  // made under the savepoint, maybe
      setAside(copy, e);
    }
  }
}

void PostgresSink::setAside(const Change& c, const Error& e) {
  if (dead_letters_ == nullptr) throw e;
  if (dead_letters_->pending(cfg_.name) >= max_dead_letters_) {
    throw Error(ErrorClass::Fatal,
                fmt::format("{} (change-log offset {}), and the dead letter queue of sink \"{}\" already holds "
                            "dlq.max_records ({}) records",
                            e.what(), c.offset, cfg_.name, max_dead_letters_),
                "look at the rejected changes with tidemark dlq list, fix their cause at the destination, then "
                "tidemark dlq retry (or discard) them, or raise dlq.max_records; then run again");
  }
  core::DeadLetter d;
  d.sink = cfg_.name;
  d.offset = c.offset;
  d.topic = c.topic;
  if (c.schema != nullptr) {
    d.table = targetTable(c.schema->schema, c.schema->table);
    d.schema = c.schema->json;
  }
  d.key = c.key;
  d.value = c.event_value;
  d.unchanged = c.unchanged;
  try {
    const json doc = json::parse(c.event_value);
    const json& source = doc.at("source");
    if (auto lsn = source.find("lsn"); lsn != source.end() && lsn->is_number_unsigned()) {
      d.position = lsnText(lsn->get<uint64_t>());
    }
  } catch (const json::exception&) {
  }
  d.error = e.what();
  dead_letters_->add(d);
  dead_keys_[{d.table, d.key}] = d.offset;
  logger_.warn("set aside change-log offset {} ({} key {}) in the dead letter queue: {}", d.offset, d.table, d.key,
               e.what());
}

PostgresSink::RetryResult PostgresSink::retryDeadLetters(const std::vector<core::DeadLetter>& letters) {
  RetryResult result;
  reset();
  begin();  // waits for the running sink's transaction, if any, and keeps it out until COMMIT
  for (const core::DeadLetter& d : letters) {
    // A newer change of the key was applied since: this one must not overwrite it.
    pg::Result r;
    try {
      r = conn_->execParams(
          "SELECT log_offset FROM tidemark.sink_superseded WHERE sink = $1 AND target = $2 AND key = $3",
          {cfg_.name, d.table, d.key}, "looking for newer changes of the key");
    } catch (const pg::ServerError& e) {
      rethrow(e, false);
    }
    if (PQntuples(r.get()) == 1 && std::stoull(PQgetvalue(r.get(), 0, 0)) > d.offset) {
      result.superseded.emplace_back(
          d.id, fmt::format("a newer change of the key (change-log offset {}) was applied since",
                            PQgetvalue(r.get(), 0, 0)));
      continue;
    }
    std::string version;
    try {
      const json schema = json::parse(d.schema);
      version = schema.at("version").get<std::string>();
      tableSchema(d.topic, version, d.schema);
    } catch (const std::exception& e) {
      result.failed.emplace_back(d.id, fmt::format("its table schema cannot be read: {}", e.what()));
      continue;
    }
    exec("SAVEPOINT tm_row", "marking a change at the destination");
    try {
      core::Event e{.topic = d.topic, .key = d.key, .value = d.value};
      e.schema_version = version;
      e.unchanged = d.unchanged;
      e.offset = d.offset;
      std::optional<Change> c = parse(e);
      if (c) applyOne(*c);
      exec("RELEASE SAVEPOINT tm_row", "applying a change at the destination");
      result.applied.push_back(d.id);
    } catch (const Error& e) {
      if (e.errorClass() != ErrorClass::Poison) throw;
      exec("ROLLBACK TO SAVEPOINT tm_row; RELEASE SAVEPOINT tm_row", "dropping a change at the destination");
      for (auto& [name, target] : targets_) target->stage.clear();
      result.failed.emplace_back(d.id, e.what());
    }
  }
  exec("COMMIT", "committing at the destination");
  in_transaction_ = false;
  return result;
}

}  // namespace tidemark::sinks
