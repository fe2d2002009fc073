#include "source/postgres/capture.h"

#include <fmt/format.h>

#include <algorithm>

namespace tidemark::pg {

namespace {

// A text[] literal for a query parameter: every element double-quoted, '"' and '\' escaped.
std::string textArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::optional<RelationId> relidValue(const PGresult* r, int row, int col) {
  auto v = pg::value(r, row, col);
  if (!v) return std::nullopt;
  return RelationId{static_cast<uint32_t>(std::stoul(*v))};
}

std::string quoted(const config::TableName& t) { return pg::quoteTableText(t.schema, t.table); }

// The text of a two-element text[] ({a,b}, elements double-quoted when they need it).
std::optional<config::TableName> parseTextPair(const std::string& text) {
  std::vector<std::string> parts;
  size_t i = 1;
  while (i < text.size() && parts.size() < 2) {
    std::string part;
    if (text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
        if (i < text.size()) part += text[i];
      }
      ++i;
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '}') part += text[i++];
    }
    parts.push_back(part);
    ++i;  // ',' or '}'
  }
  if (parts.size() != 2) return std::nullopt;
  return config::TableName{parts[0], parts[1]};
}

std::string shown(const config::TableName& t) { return t.str(); }

}  // namespace

CaptureFacts readCaptureFacts(pg::Connection& conn, const config::PipelineConfig& cfg,
                              const std::vector<state::CapturedTable>& stored) {
  CaptureFacts facts;
  const std::string& pub = cfg.source.publication;
  pg::Result p = conn.execParams("SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1",
                                 {pub}, "reading pg_publication");
  if (PQntuples(p.get()) > 0) {
    facts.publication.exists = true;
    facts.publication.all_tables = pg::value(p.get(), 0, 0) == "t";
    facts.publication.via_root = pg::value(p.get(), 0, 1) == "t";
  }

  std::vector<std::string> schemas, tables;
  for (const auto& t : cfg.source.tables) {
    schemas.push_back(t.schema);
    tables.push_back(t.table);
  }
  // pg_publication_tables lists the relations whose rows the stream carries under their own
  // names: with publish_via_partition_root the topmost published ancestor, without it the
  // leaf partitions.
  pg::Result r = conn.execParams(
      "WITH published AS (SELECT c.oid FROM pg_publication_tables pt "
      "  JOIN pg_namespace n ON n.nspname = pt.schemaname "
      "  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
      "  WHERE pt.pubname = $1), "
      "ancestor AS (SELECT x.ord, an.nspname::text AS s, ac.relname::text AS t "
      "  FROM unnest($2::text[], $3::text[]) WITH ORDINALITY x(s, t, ord) "
      "  JOIN pg_namespace n ON n.nspname = x.s "
      "  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t "
      "  CROSS JOIN LATERAL pg_partition_ancestors(c.oid) a "
      "  JOIN pg_class ac ON ac.oid = a.relid JOIN pg_namespace an ON an.oid = ac.relnamespace "
      "  WHERE c.relispartition AND a.relid <> c.oid AND a.relid IN (SELECT oid FROM published)) "
      "SELECT c.oid::text, c.relkind = 'p', c.oid IN (SELECT oid FROM published), "
      "  c.relkind = 'p' AND EXISTS (SELECT 1 FROM pg_partition_tree(c.oid) pt "
      "    WHERE pt.relid <> c.oid AND pt.relid IN (SELECT oid FROM published)), "
      "  (SELECT s FROM ancestor a WHERE a.ord = x.ord LIMIT 1), "
      "  (SELECT t FROM ancestor a WHERE a.ord = x.ord LIMIT 1), "
      "  (SELECT ARRAY[sn.nspname::text, sc.relname::text] FROM pg_class sc "
      "    JOIN pg_namespace sn ON sn.oid = sc.relnamespace WHERE c.oid IS NULL "
      "    AND lower(sn.nspname) = lower(x.s) AND lower(sc.relname) = lower(x.t) "
      "    AND sc.relkind IN ('r', 'p') ORDER BY 1 LIMIT 1)::text "
      "FROM unnest($2::text[], $3::text[]) WITH ORDINALITY x(s, t, ord) "
      "LEFT JOIN pg_namespace n ON n.nspname = x.s "
      "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t AND c.relkind IN ('r', 'p') "
      "ORDER BY x.ord",
      {pub, textArray(schemas), textArray(tables)}, "reading the captured tables from the catalog");
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    TableFacts f;
    f.table = cfg.source.tables.at(static_cast<size_t>(i));
    f.relid = relidValue(r.get(), i, 0);
    f.partitioned = pg::value(r.get(), i, 1) == "t";
    f.published = pg::value(r.get(), i, 2) == "t";
    f.partitions_published = pg::value(r.get(), i, 3) == "t";
    auto as = pg::value(r.get(), i, 4);
    auto at = pg::value(r.get(), i, 5);
    if (as && at) f.published_ancestor = config::TableName{*as, *at};
    if (auto similar = pg::value(r.get(), i, 6)) f.similar = parseTextPair(*similar);
    facts.tables.push_back(std::move(f));
  }

  std::vector<std::string> oids;
  for (auto& f : facts.tables) {
    for (const auto& s : stored) {
      if (s.schema == f.table.schema && s.table == f.table.table) {
        f.stored_relid = s.relid;
        oids.push_back(std::to_string(s.relid.value));
      }
    }
  }
  if (!oids.empty()) {
    pg::Result n = conn.execParams(
        "SELECT c.oid::text, n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[])",
        {textArray(oids)}, "looking up the captured relations");
    for (auto& f : facts.tables) {
      for (int i = 0; i < PQntuples(n.get()); ++i) {
        if (f.stored_relid && relidValue(n.get(), i, 0) == f.stored_relid) {
          f.stored_now = config::TableName{pg::value(n.get(), i, 1).value_or(""),
                                           pg::value(n.get(), i, 2).value_or("")};
        }
      }
    }
  }
  return facts;
}

std::vector<CaptureProblem> judgeCapture(const CaptureFacts& facts, const config::PipelineConfig& cfg,
                                         const std::vector<config::TableName>& accept_recreated) {
  std::vector<CaptureProblem> problems;
  const std::string& pub_name = cfg.source.publication;
  const std::string pub = pg::quoteIdentifierText(pub_name);
  const std::string rerun =
      "Changes made to it in between are not in the stream: reload its rows into the "
      "destinations (a snapshot) to fill the gap";
  for (const TableFacts& f : facts.tables) {
    const config::TableName& t = f.table;
    auto problem = [&](ErrorClass cls, std::string what, std::string fix) {
      problems.push_back(CaptureProblem{t, cls, std::move(what), std::move(fix)});
    };
    const bool captured_before = f.stored_relid.has_value();
    const bool renamed = captured_before && f.stored_now && !(*f.stored_now == t);

    if (!f.relid) {
      if (renamed) {
        std::vector<std::string> back;
        if (f.stored_now->schema != t.schema) {
          back.push_back(fmt::format("ALTER TABLE {} SET SCHEMA {};", quoted(*f.stored_now),
                                     pg::quoteIdentifierText(t.schema)));
        }
        if (f.stored_now->table != t.table) {
          back.push_back(fmt::format("ALTER TABLE {} RENAME TO {};",
                                     quoted(config::TableName{t.schema, f.stored_now->table}),
                                     pg::quoteIdentifierText(t.table)));
        }
        std::string back_sql;
        for (const auto& b : back) back_sql += (back_sql.empty() ? "" : " ") + b;
        problem(ErrorClass::PositionLost,
                fmt::format("captured table {} was renamed: relation {} is now {}", shown(t),
                            f.stored_relid->value, shown(*f.stored_now)),
                fmt::format("name it back ({}), or capture it under its new name: replace {} with {} "
                            "in source.tables (its events then go to topic {})",
                            back_sql, shown(t), shown(*f.stored_now), config::tableTopic(cfg, *f.stored_now)));
      } else if (captured_before) {
        problem(ErrorClass::PositionLost,
                fmt::format("captured table {} was dropped (relation {} no longer exists)", shown(t),
                            f.stored_relid->value),
                fmt::format("remove {} from source.tables to go on without it; if a new table took its "
                            "place under another name, capture that one",
                            shown(t)));
      } else {
        if (f.similar) {
          problem(ErrorClass::Config,
                  fmt::format("table {} does not exist; did you mean {}?", quoted(t), quoted(*f.similar)),
                  fmt::format("name it in source.tables as '{}' (double quotes keep the case; in YAML, "
                              "wrap the whole name in single quotes)",
                              quoted(*f.similar)));
        } else {
          problem(ErrorClass::Config, fmt::format("table {} does not exist", quoted(t)),
                  fmt::format("create it, or remove {} from source.tables", shown(t)));
        }
      }
      continue;
    }

    if (captured_before && *f.stored_relid != *f.relid &&
        std::find(accept_recreated.begin(), accept_recreated.end(), t) == accept_recreated.end()) {
      std::string was = renamed ? fmt::format("; the relation captured before is now {}", shown(*f.stored_now))
                                : "";
      problem(ErrorClass::PositionLost,
              fmt::format("captured table {} was dropped and created again: it is relation {} now, "
                          "not {}{}. The rows it had were removed without delete events",
                          shown(t), f.relid->value, f.stored_relid->value, was),
              fmt::format("to capture the new table from now on, make sure it is in the publication "
                          "(ALTER PUBLICATION {} ADD TABLE {};), then run once with "
                          "--accept-recreated {}, and reload its rows into the destinations (a "
                          "snapshot)",
                          pub, quoted(t), shown(t)));
      continue;
    }

    if (f.published) continue;
    if (!facts.publication.exists) {
      problem(captured_before ? ErrorClass::PositionLost : ErrorClass::Config,
              fmt::format("publication \"{}\" does not exist{}", pub_name,
                          captured_before ? fmt::format(", so captured table {} is not in it", shown(t)) : ""),
              fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true);{}",
                          pub, quoted(t), captured_before ? " " + rerun : ""));
    } else if (f.partitioned && f.partitions_published) {
      problem(ErrorClass::Config,
              fmt::format("publication \"{}\" sends the rows of partitioned table {} under its "
                          "partitions' names (publish_via_partition_root is off)",
                          pub_name, shown(t)),
              fmt::format("ALTER PUBLICATION {} SET (publish_via_partition_root = true);", pub));
    } else if (f.published_ancestor) {
      problem(ErrorClass::Config,
              fmt::format("{} is a partition of {}, which publication \"{}\" publishes with "
                          "publish_via_partition_root: its rows arrive as {}'s",
                          shown(t), shown(*f.published_ancestor), pub_name, shown(*f.published_ancestor)),
              fmt::format("capture {} instead of {} in source.tables", shown(*f.published_ancestor), shown(t)));
    } else if (captured_before) {
      problem(ErrorClass::PositionLost,
              fmt::format("captured table {} is no longer in publication \"{}\"", shown(t), pub_name),
              fmt::format("ALTER PUBLICATION {} ADD TABLE {}; then run again. {}", pub, quoted(t), rerun));
    } else {
      problem(ErrorClass::Config,
              fmt::format("publication \"{}\" does not include {}", pub_name, shown(t)),
              fmt::format("ALTER PUBLICATION {} ADD TABLE {};", pub, quoted(t)));
    }
  }
  return problems;
}

Error captureError(const std::vector<CaptureProblem>& problems) {
  ErrorClass cls = ErrorClass::Config;
  std::string what;
  std::string fix;
  for (const auto& p : problems) {
    if (p.cls == ErrorClass::PositionLost) cls = ErrorClass::PositionLost;
    what += (what.empty() ? "" : "\n") + p.what;
    if (fix.find(p.fix) == std::string::npos) fix += (fix.empty() ? "" : "\n") + p.fix;
  }
  return Error(cls, std::move(what), std::move(fix));
}

CaptureSet::CaptureSet(const config::PipelineConfig& cfg, std::vector<state::CapturedTable> tables)
    : cfg_(cfg), tables_(std::move(tables)) {}

events::Classifier CaptureSet::classifier(Ancestors ancestors) const {
  return [this, ancestors = std::move(ancestors)](RelationId relid, std::string_view schema,
                                                  std::string_view table) {
    auto captured = [&](const state::CapturedTable& t, std::string note) {
      events::RelationTarget target;
      target.role = events::RelationRole::Captured;
      target.schema = t.schema;
      target.table = t.table;
      target.topic = config::tableTopic(cfg_, config::TableName{t.schema, t.table});
      target.note = std::move(note);
      return target;
    };
    auto named = [&](const state::CapturedTable& t) { return t.schema == schema && t.table == table; };
    for (const auto& t : tables_) {
      if (t.relid != relid) continue;
      return captured(t, named(t) ? "" : fmt::format("relation {} of captured table {}.{} appears as {}.{} "
                                                     "(renamed or moved); its changes go on as {}.{}'s",
                                                     relid.value, t.schema, t.table, schema, table,
                                                     t.schema, t.table));
    }
    for (const auto& t : tables_) {
      if (!named(t)) continue;
      // Resolved to another relation: an earlier or later table of the same name. Its changes
      // are this table's by name, as the configuration says; the catalog check stops the
      // pipeline if the table it resolved to is no longer the one of that name.
      return captured(t, t.relid.value == 0 ? "" : fmt::format("relation {}, not the resolved {}, is named {}.{}: "
                                                                "an earlier or later table of that name",
                                                                relid.value, t.relid.value, schema, table));
    }
    events::RelationTarget other;
    const config::TableName& hb = cfg_.heartbeat.table;
    if (hb.schema == schema && hb.table == table) {
      other.role = events::RelationRole::Heartbeat;
      other.topic = config::sanitizeTopic(fmt::format("{}.{}.{}", cfg_.topic_prefix, schema, table));
      return other;
    }
    if (ancestors) {
      for (RelationId a : ancestors(relid)) {
        for (const auto& t : tables_) {
          if (t.relid != a) continue;
          return captured(t, fmt::format("rows of {}.{}, a partition of captured table {}.{}, arrive under "
                                         "the partition's own name (the publication did not publish via "
                                         "the partition root when they were written); they go on as {}.{}'s",
                                         schema, table, t.schema, t.table, t.schema, t.table));
        }
      }
    }
    const config::TableName& sig = cfg_.signal.table;
    other.note = sig.schema == schema && sig.table == table
                     ? "the signal table"
                     : fmt::format("publication \"{}\" also publishes it, but it is not in source.tables",
                                   cfg_.source.publication);
    return other;
  };
}

CaptureSet resolveCapture(pg::Connection& conn, const config::PipelineConfig& cfg,
                          const std::vector<state::CapturedTable>& stored,
                          const std::vector<config::TableName>& accept_recreated, const Logger& log) {
  CaptureFacts facts = readCaptureFacts(conn, cfg, stored);
  std::vector<CaptureProblem> problems = judgeCapture(facts, cfg, accept_recreated);
  if (!problems.empty()) throw captureError(problems);
  std::vector<state::CapturedTable> tables;
  for (const TableFacts& f : facts.tables) {
    if (f.stored_relid && *f.stored_relid != *f.relid) {
      log.warn("capturing {} as relation {} from now on (was relation {}; --accept-recreated): reload "
               "its rows into the destinations",
               f.table.str(), f.relid->value, f.stored_relid->value);
    }
    tables.push_back(state::CapturedTable{f.table.schema, f.table.table, *f.relid});
  }
  for (const auto& t : accept_recreated) {
    if (std::find(cfg.source.tables.begin(), cfg.source.tables.end(), t) == cfg.source.tables.end()) {
      throw Error(ErrorClass::Config, fmt::format("--accept-recreated {}: not in source.tables", t.str()),
                  "name a table listed in source.tables");
    }
  }
  return CaptureSet(cfg, std::move(tables));
}

std::vector<RelationId> partitionAncestors(pg::Connection& conn, RelationId relid) {
  pg::Result r = conn.execParams(
      "SELECT a.relid::oid::text FROM pg_partition_ancestors($1::oid) WITH ORDINALITY a(relid, n) "
      "WHERE a.relid <> $1::oid::regclass ORDER BY n",
      {std::to_string(relid.value)}, fmt::format("looking up the ancestors of relation {}", relid.value));
  std::vector<RelationId> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (auto id = relidValue(r.get(), i, 0)) out.push_back(*id);
  }
  return out;
}

}  // namespace tidemark::pg
