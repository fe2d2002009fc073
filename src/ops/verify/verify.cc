#include "ops/verify/verify.h"

#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/lsn.h"
#include "postgres/connection.h"
#include "source/postgres/position.h"
#include "state/sqlite_store.h"

namespace tidemark::verify {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::ordered_json;

constexpr int kRounds = 3;  // a differing chunk is compared this many times before it counts

struct Column {
  std::string name;
  std::string quoted;
  std::string type;
};

struct Destination {
  const config::SinkConfig* sink;
  pg::Connection conn;
};

/// A chunk: keys in (from, to]; an empty bound is open.
struct Chunk {
  std::vector<std::string> from;
  std::vector<std::string> to;
};

struct Figures {
  uint64_t rows = 0;
  std::string checksum;
  bool operator==(const Figures&) const = default;
};

struct Difference {
  Chunk chunk;
  Figures source;
  Figures destination;
};

struct TableResult {
  std::string table;
  std::string sink;
  std::string target;
  bool equal = true;
  std::string problem;  // the destination table cannot be compared (missing, no such column)
  uint64_t source_rows = 0;
  uint64_t destination_rows = 0;
  size_t chunks = 0;
  std::vector<Difference> differing;
};

pg::Connection sourceConnection(const config::PipelineConfig& cfg) {
  return pg::Connection::open(pg::sourceOptions(cfg.source, "tidemark verify"));
}

pg::Connection destinationConnection(const config::SinkConfig& sink) {
  return pg::Connection::open(pg::destinationOptions(sink, "tidemark verify"));
}

std::string scalar(pg::Connection& c, const std::string& sql, const std::vector<std::optional<std::string>>& params,
                   std::string_view what) {
  pg::Result r = c.execParams(sql, params, what);
  if (PQntuples(r.get()) != 1 || PQgetisnull(r.get(), 0, 0)) return "";
  return PQgetvalue(r.get(), 0, 0);
}

// Waits until every destination holds everything the source committed before now.
void waitConsistent(const config::PipelineConfig& cfg, pg::Connection& source, std::vector<Destination>& dests,
                    Clock::time_point deadline) {
  const std::string now_text = scalar(source, "SELECT pg_current_wal_lsn()::text", {}, "reading the source's position");
  const Lsn target = *Lsn::parse(now_text);
  uint64_t log_end = 0;
  for (;;) {
    if (auto stored = state::readPosition(cfg.state_dir)) {
      if (pg::decodePosition(stored->source).lsn >= target) {
        log_end = stored->log_end;
        break;
      }
    }
    if (Clock::now() >= deadline) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("the pipeline has not saved a position past the source's {} (what the source had "
                              "committed when verify began) within --timeout",
                              now_text),
                  "verify compares at a point the pipeline reached: run it while tidemark run is running (or "
                  "give --timeout more time while it catches up)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (Destination& d : dests) {
    for (;;) {
      const std::string at = scalar(d.conn, "SELECT log_cursor FROM tidemark.sink_progress WHERE sink = $1",
                                    {d.sink->name}, "reading the sink's progress at the destination");
      if (!at.empty() && std::stoull(at) >= log_end) break;
      if (Clock::now() >= deadline) {
        throw Error(ErrorClass::Fatal,
                    fmt::format("sink \"{}\" has not applied the change log up to offset {} (the source's {}) within "
                                "--timeout; it stands at {}",
                                d.sink->name, log_end, now_text, at.empty() ? "nothing" : at),
                    "look at tidemark status: the sink may be retrying or failed; verify again once it caught up");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

std::vector<Column> columnsOf(pg::Connection& c, const std::string& qualified) {
  pg::Result r = c.execParams(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
      {qualified}, "reading a table's columns");
  std::vector<Column> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.push_back(Column{PQgetvalue(r.get(), i, 0), pg::quoteIdentifierText(PQgetvalue(r.get(), i, 0)),
                         PQgetvalue(r.get(), i, 1)});
  }
  return out;
}

std::vector<Column> keyOf(pg::Connection& c, const std::string& qualified) {
  pg::Result r = c.execParams(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i "
      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
      "WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
      {qualified}, "reading a table's primary key");
  std::vector<Column> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.push_back(Column{PQgetvalue(r.get(), i, 0), pg::quoteIdentifierText(PQgetvalue(r.get(), i, 0)),
                         PQgetvalue(r.get(), i, 1)});
  }
  return out;
}

// Key values as a row of literals, quoted by the server's rules (libpq's, whatever
// standard_conforming_strings says there).
std::string rowOf(const pg::Connection& c, const std::vector<Column>& key, const std::vector<std::string>& values) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < key.size(); ++i) parts.push_back(c.quoteLiteral(values[i]) + "::" + key[i].type);
  return fmt::format("ROW({})", fmt::join(parts, ", "));
}

std::string keyRow(const std::vector<Column>& key) {
  std::vector<std::string> cols;
  for (const Column& c : key) cols.push_back(c.quoted);
  return fmt::format("ROW({})", fmt::join(cols, ", "));
}

std::string predicate(const pg::Connection& c, const std::vector<Column>& key, const Chunk& chunk,
                      const std::string& extra) {
  std::vector<std::string> parts;
  if (!chunk.from.empty()) parts.push_back(fmt::format("{} > {}", keyRow(key), rowOf(c, key, chunk.from)));
  if (!chunk.to.empty()) parts.push_back(fmt::format("{} <= {}", keyRow(key), rowOf(c, key, chunk.to)));
  if (!extra.empty()) parts.push_back(extra);
  return parts.empty() ? "true" : fmt::format("{}", fmt::join(parts, " AND "));
}

// The chunks of a table: boundaries every `rows` keys on the source, read by keyset pagination.
std::vector<Chunk> chunksOf(pg::Connection& source, const std::string& qualified, const std::vector<Column>& key,
                            uint64_t rows) {
  std::vector<Chunk> out;
  if (key.empty()) return {Chunk{}};
  std::vector<std::string> texts;
  std::vector<std::string> order;
  for (const Column& c : key) {
    // By the table's column, not the text output of the same name (which ORDER BY would take).
    texts.push_back(c.quoted + "::text");
    order.push_back("t." + c.quoted);
  }
  std::vector<std::string> last;
  for (;;) {
    const std::string where = last.empty() ? "" : fmt::format(" WHERE {} > {}", keyRow(key), rowOf(source, key, last));
    pg::Result r = source.exec(fmt::format("SELECT {} FROM {} t{} ORDER BY {} OFFSET {} LIMIT 1", fmt::join(texts, ", "),
                                           qualified, where, fmt::join(order, ", "), rows - 1),
                               "splitting a table into chunks");
    if (PQntuples(r.get()) == 0) break;
    std::vector<std::string> bound;
    for (int i = 0; i < PQnfields(r.get()); ++i) bound.emplace_back(PQgetvalue(r.get(), 0, i));
    out.push_back(Chunk{last, bound});
    last = std::move(bound);
  }
  out.push_back(Chunk{last, {}});
  return out;
}

Figures figures(pg::Connection& c, const std::string& qualified, const std::vector<Column>& columns,
                const std::vector<Column>& key, const Chunk& chunk, const std::string& extra) {
  std::vector<std::string> cols;
  for (const Column& col : columns) cols.push_back(col.quoted);
  pg::Result r = c.exec(fmt::format("SELECT count(*), coalesce(sum(hashtextextended((ROW({}))::text, 0)), 0)::text "
                                    "FROM {} WHERE {}",
                                    fmt::join(cols, ", "), qualified, predicate(c, key, chunk, extra)),
                        "counting and summing a chunk");
  return Figures{std::stoull(PQgetvalue(r.get(), 0, 0)), PQgetvalue(r.get(), 0, 1)};
}

std::string describeChunk(const Chunk& c) {
  auto bound = [](const std::vector<std::string>& v) {
    return v.size() == 1 ? v[0] : fmt::format("({})", fmt::join(v, ", "));
  };
  if (c.from.empty() && c.to.empty()) return "the whole table";
  if (c.from.empty()) return fmt::format("keys up to {}", bound(c.to));
  if (c.to.empty()) return fmt::format("keys after {}", bound(c.from));
  return fmt::format("keys after {} up to {}", bound(c.from), bound(c.to));
}

}  // namespace

int verifyCommand(const config::PipelineConfig& cfg, const Options& options) {
  std::vector<Destination> dests;
  std::vector<std::string> skipped;
  for (const auto& s : cfg.sinks) {
    if (options.sink && s.name != *options.sink) continue;
    if (s.kind != "postgres" || s.mode != "upsert") {
      skipped.push_back(fmt::format("sink \"{}\" ({}{}) is not compared: verify compares tables kept in upsert mode",
                                    s.name, s.kind, s.kind == "postgres" ? ", append" : ""));
      continue;
    }
    dests.push_back(Destination{&s, destinationConnection(s)});
  }
  if (options.sink && dests.empty() && skipped.empty()) {
    throw Error(ErrorClass::Config, fmt::format("--sink {}: no sink of that name", *options.sink),
                "name a sink of the configuration (sinks[].name)");
  }
  if (dests.empty()) {
    throw Error(ErrorClass::Config, "no PostgreSQL destination in upsert mode to compare with the source",
                "verify compares sinks of kind postgres, mode upsert");
  }
  pg::Connection source = sourceConnection(cfg);
  const auto deadline = Clock::now() + options.timeout;
  waitConsistent(cfg, source, dests, deadline);

  std::vector<TableResult> results;
  for (const config::TableName& t : cfg.source.tables) {
    const std::string src_table = pg::quoteTableText(t.schema, t.table);
    const std::vector<Column> columns = columnsOf(source, src_table);
    const std::vector<Column> key = keyOf(source, src_table);
    std::vector<Chunk> chunks = chunksOf(source, src_table, key, std::max<uint64_t>(options.chunk_rows, 1));
    for (Destination& d : dests) {
      TableResult res;
      res.table = t.str();
      res.sink = d.sink->name;
      res.target = pg::quoteTableText(d.sink->schema.value_or(t.schema), t.table);
      res.chunks = chunks.size();
      const std::vector<Column> dest_columns = columnsOf(d.conn, res.target);
      if (dest_columns.empty()) {
        res.equal = false;
        res.problem = fmt::format("{} does not exist at the destination", res.target);
        results.push_back(std::move(res));
        continue;
      }
      std::string extra;
      for (const Column& c : dest_columns) {
        if (c.name == "__deleted" && d.sink->soft_delete) extra = "NOT \"__deleted\"";
      }
      for (const Column& c : columns) {
        if (std::none_of(dest_columns.begin(), dest_columns.end(), [&](const Column& x) { return x.name == c.name; })) {
          res.problem = fmt::format("column {} is missing at the destination", c.quoted);
        }
      }
      if (!res.problem.empty()) {
        res.equal = false;
        results.push_back(std::move(res));
        continue;
      }
      std::vector<Chunk> suspects;
      for (const Chunk& c : chunks) {
        const Figures s = figures(source, src_table, columns, key, c, "");
        const Figures x = figures(d.conn, res.target, columns, key, c, extra);
        res.source_rows += s.rows;
        res.destination_rows += x.rows;
        if (!(s == x)) suspects.push_back(c);
      }
      // Rows the source changed while verify ran: compare again once the destination caught up.
      for (int round = 1; round < kRounds && !suspects.empty(); ++round) {
        waitConsistent(cfg, source, dests, Clock::now() + options.timeout);
        std::vector<Chunk> still;
        for (const Chunk& c : suspects) {
          if (!(figures(source, src_table, columns, key, c, "") == figures(d.conn, res.target, columns, key, c, extra))) {
            still.push_back(c);
          }
        }
        suspects = std::move(still);
      }
      for (const Chunk& c : suspects) {
        res.differing.push_back(Difference{c, figures(source, src_table, columns, key, c, ""),
                                           figures(d.conn, res.target, columns, key, c, extra)});
      }
      res.equal = res.differing.empty();
      results.push_back(std::move(res));
    }
  }

  const bool all_equal = std::all_of(results.begin(), results.end(), [](const TableResult& r) { return r.equal; });
  if (options.json) {
    ordered_json out;
    out["equal"] = all_equal;
    out["tables"] = ordered_json::array();
    for (const TableResult& r : results) {
      ordered_json t{{"table", r.table},           {"sink", r.sink},
                     {"target", r.target},         {"equal", r.equal},
                     {"source_rows", r.source_rows}, {"destination_rows", r.destination_rows},
                     {"chunks", r.chunks}};
      if (!r.problem.empty()) t["problem"] = r.problem;
      t["differing"] = ordered_json::array();
      for (const Difference& d : r.differing) {
        t["differing"].push_back({{"from", d.chunk.from},
                                  {"to", d.chunk.to},
                                  {"source_rows", d.source.rows},
                                  {"destination_rows", d.destination.rows}});
      }
      out["tables"].push_back(std::move(t));
    }
    out["skipped"] = skipped;
    std::cout << out.dump(2) << "\n";
  } else {
    for (const TableResult& r : results) {
      if (!r.problem.empty()) {
        std::cout << fmt::format("DIFFERS  {} -> sink {}: {}\n", r.table, r.sink, r.problem);
      } else if (r.equal) {
        std::cout << fmt::format("EQUAL    {} -> sink {} ({}): {} rows in {} chunk{}\n", r.table, r.sink, r.target,
                                 r.source_rows, r.chunks, r.chunks == 1 ? "" : "s");
      } else {
        std::cout << fmt::format("DIFFERS  {} -> sink {} ({}): {} rows at the source, {} at the destination\n",
                                 r.table, r.sink, r.target, r.source_rows, r.destination_rows);
        for (const Difference& d : r.differing) {
          std::cout << fmt::format("         {}: {} rows at the source, {} at the destination{}\n",
                                   describeChunk(d.chunk), d.source.rows, d.destination.rows,
                                   d.source.rows == d.destination.rows ? " (values differ)" : "");
        }
      }
    }
    for (const std::string& s : skipped) std::cout << "skipped  " << s << "\n";
    std::cout << (all_equal ? "every table is equal\n" : "some tables differ: reload them (a snapshot) or look for "
                                                         "writes made at the destination\n");
  }
  return all_equal ? kExitOk : kExitRuntime;
}

}  // namespace tidemark::verify
