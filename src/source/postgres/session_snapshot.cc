// Session's initial snapshot (session.h): the readers started (snapshot_reader.h), and this
// thread writing what they read in Debezium's order of markers, a chunk at a time.
#include <fmt/format.h>

#include <algorithm>

#include "base/clock.h"
#include "base/error.h"
#include "source/postgres/session.h"
#include "source/postgres/snapshot.h"
#include "source/postgres/snapshot_reader.h"

namespace tidemark::pg {

namespace {

// How often the initial snapshot's progress is logged (status has it at all times).
constexpr auto kProgressLineEvery = std::chrono::seconds(10);

}  // namespace

void Session::logProgress(const SnapshotProgress& progress) {
  const SnapshotProgress::Totals totals = progress.totals();
  const uint64_t rows = totals.rows;
  const uint64_t estimated = totals.estimated.value_or(0);
  const double seconds = static_cast<double>(std::max<int64_t>(unixMicrosNow() - progress.started_us, 1)) * 1e-6;
  const double rate = static_cast<double>(rows) / seconds;
  if (estimated > 0 && rate > 0) {
    log_.info("initial snapshot: {} of about {} rows ({:.0f}%), {:.0f} rows/s, about {:.0f} s left", rows, estimated,
              100.0 * static_cast<double>(std::min(rows, estimated)) / static_cast<double>(estimated), rate,
              static_cast<double>(estimated - std::min(estimated, rows)) / rate);
  } else {
    log_.info("initial snapshot: {} rows, {:.0f} rows/s", rows, rate);
  }
}

bool Session::snapshot(Connection& conn, const std::vector<state::CapturedTable>& tables, bool resume,
                       std::string_view reason, const std::atomic<bool>& stop) {
  const SnapshotStart start = beginSnapshot(conn, !cfg_.source.read_only);
  SnapshotProgress& progress = snapshot_progress_.emplace();
  progress.started_us = unixMicrosNow();
  // Resumed, the stream still skips what the first snapshot saw: this one began later and sees
  // all of that too, so the rows read now hold those transactions as well. What it sees beyond
  // is streamed as well (read, then applied again: the same rows).
  resume = resume && position_.cover.has_value();
  progress.reason = resume ? "resumed" : std::string(reason);
  if (!resume) {
    position_.cover = start.cover;
    position_.snapshot_tables.clear();
  }
  position_.snapshot_pending = true;

  // Each table's parts (a table, or ranges of its keys) and how far each got, as stored.
  std::vector<std::vector<SnapshotTableState>> stored(tables.size());
  auto fresh = [&](size_t t) {
    SnapshotTableState st;
    st.schema = tables[t].schema;
    st.table = tables[t].table;
    return st;
  };
  uint64_t rows_before = 0;
  size_t tables_done = 0;
  for (size_t t = 0; t < tables.size(); ++t) {
    for (const SnapshotTableState& st : position_.snapshot_tables) {
      if (st.schema == tables[t].schema && st.table == tables[t].table) stored[t].push_back(st);
    }
    if (stored[t].empty()) stored[t].push_back(fresh(t));
    bool done = true;
    for (const SnapshotTableState& st : stored[t]) {
      rows_before += st.rows;
      done = done && st.done;
    }
    tables_done += done ? 1 : 0;
  }
  if (resume) {
    log_.info("initial snapshot resumed: {} of {} table(s) done, {} row(s) in the change log; the stream skips "
              "transactions up to {} as before",
              tables_done, tables.size(), rows_before, position_.cover->through.str());
  } else {
    log_.info("initial snapshot of {} table(s) from {} (transactions up to {} are in it; the stream skips them)",
              tables.size(), position_.lsn.str(), start.cover.through.str());
  }

  // The tables to read, described in the snapshot, large ones split into ranges of their keys
  // for the readers to share (readers after the first need connections of their own).
  const size_t threads = open_chunk_connection_ ? cfg_.source.snapshot_max_threads : 1;
  std::vector<SnapshotRelation> described(tables.size());
  struct TableRun {
    const events::Relation* rel = nullptr;
    size_t parts_left = 0;
    bool any = false;  // a row of it is in the log, or held to be
  };
  std::vector<TableRun> runs(tables.size());
  std::vector<SnapshotTableState> states;
  std::vector<SnapshotPart> parts;  // the parts to read, by index into states
  std::vector<size_t> part_state;
  for (size_t t = 0; t < tables.size(); ++t) {
    uint64_t rows = 0;
    for (const SnapshotTableState& st : stored[t]) rows += st.rows;
    progress.tables.push_back({.name = tables[t].schema + "." + tables[t].table,
                               .rows = rows,
                               .estimated = estimatedRows(conn, tables[t]),
                               .done = true});
    bool done = true;
    for (const SnapshotTableState& st : stored[t]) done = done && st.done;
    if (!done) {
      described[t] = describeForSnapshot(conn, tables[t]);
      runs[t].rel = &relations_.update(described[t].message);
    }
    if (done || !runs[t].rel->captured) {
      for (SnapshotTableState& st : stored[t]) states.push_back(std::move(st));
      continue;
    }
    progress.tables[t].done = false;
    runs[t].any = rows > 0;
    const bool keyless = described[t].key.empty();
    bool lost_place = keyless;
    for (const SnapshotTableState& st : stored[t]) lost_place = lost_place || (st.rows > 0 && !st.after);
    if (rows > 0 && lost_place) {
      log_.warn("{}.{} has no primary key or replica identity index to resume by: its {} row(s) read before are "
                "read again from its start",
                tables[t].schema, tables[t].table, rows);
      stored[t] = {fresh(t)};
      progress.tables[t].rows = 0;
    }
    // A table not begun yet, large enough to be worth it, is read in ranges of its keys.
    const std::optional<uint64_t>& estimated = progress.tables[t].estimated;
    if (threads > 1 && rows == 0 && stored[t].size() == 1 && !keyless && described[t].kind == 'r' && estimated &&
        *estimated >= 2 * cfg_.source.snapshot_chunk_rows) {
      const size_t n = std::min<uint64_t>(threads, *estimated / cfg_.source.snapshot_chunk_rows);
      const std::vector<std::vector<std::string>> bounds = splitKeys(conn, described[t], n, *estimated);
      if (!bounds.empty()) {
        log_.info("{}.{} is read in {} ranges of its key", tables[t].schema, tables[t].table, bounds.size() + 1);
        stored[t].clear();
        for (size_t i = 0; i <= bounds.size(); ++i) {
          SnapshotTableState st = fresh(t);
          if (i > 0) st.after = bounds[i - 1];
          if (i < bounds.size()) st.until = bounds[i];
          stored[t].push_back(std::move(st));
        }
      }
    }
    for (SnapshotTableState& st : stored[t]) {
      if (!st.done) {
        parts.push_back({.table = t, .relation = &described[t], .rel = runs[t].rel, .after = st.after,
                         .until = st.until});
        part_state.push_back(states.size());
        ++runs[t].parts_left;
      }
      states.push_back(std::move(st));
    }
    if (runs[t].parts_left == 0) progress.tables[t].done = true;
  }
  position_.snapshot_tables = std::move(states);

  const events::PostgresSourceBlock::SnapshotRead base{.marker = "true", .txid = start.txid,
                                                       .ts_us = start.started_us, .lsn = position_.lsn};
  const std::string exported = threads > 1 && parts.size() > 1 ? exportSnapshot(conn) : std::string();
  SnapshotReaders readers(
      {.threads = threads,
       .chunk_rows = cfg_.source.snapshot_chunk_rows,
       .server_name = cfg_.topic_prefix,
       .db = db_,
       .utf8 = utf8Policy(cfg_),
       .read = base},
      conn, open_chunk_connection_, exported, delivery_, parts);

  // Debezium's markers: the first row in the log is "first", the last "last", a table's first
  // and last "first_in_data_collection" and "last_in_data_collection". So each table's latest
  // row is held until the next of it comes or the table ends, and a finished table's last row
  // until any other row comes or every table ended. Rows with a marker other than "true" are
  // rendered again from their text; the others are written as the readers encoded them.
  struct Held {
    size_t part = 0;  // index into parts
    std::string bytes;
    core::EncodedChange event;
    std::string key;
    SnapshotRow row;
    bool first_of_all = false;
    bool first_of_table = false;
    bool ends_part = false;  // its part ended: done once it is written
  };
  std::vector<std::optional<Held>> held(tables.size());
  std::optional<size_t> finished;  // a table that ended, its last row still held
  bool nothing_yet = rows_before == 0;
  pgoutput::TupleData tuple;
  auto written = [&](size_t part, std::string_view key) {
    SnapshotTableState& st = position_.snapshot_tables[part_state[part]];
    ++st.rows;
    if (!key.empty()) st.after = splitKey(key);
    ++progress.tables[parts[part].table].rows;
  };
  auto writeAs = [&](std::string_view marker, size_t part, std::string_view bytes, const core::EncodedChange& event,
                     const SnapshotRow& row) {
    if (marker == "true") {
      bytes_delivered_ += delivery_.write(bytes, event);
      ++events_delivered_;
      return;
    }
    asTuple(row, tuple);
    auto read = base;
    read.marker = marker;
    deliver(builder_.read(*parts[part].rel, tuple, read));
  };
  auto marker = [](bool first_of_all, bool first_of_table, bool last_of_table, bool last_of_all) {
    return last_of_all      ? "last"
           : first_of_all   ? "first"
           : last_of_table  ? "last_in_data_collection"
           : first_of_table ? "first_in_data_collection"
                            : "true";
  };
  auto emit = [&](Held& h, bool last_of_table, bool last_of_all) {
    writeAs(marker(h.first_of_all, h.first_of_table, last_of_table, last_of_all), h.part, h.bytes, h.event, h.row);
    written(h.part, h.key);
    if (h.ends_part) position_.snapshot_tables[part_state[h.part]].done = true;
  };
  auto flushFinished = [&] {
    if (!finished) return;
    emit(*held[*finished], true, false);
    held[*finished].reset();
    finished.reset();
  };
  auto commitChunk = [&] {
    delivery_.endTransaction(position_.lsn.str());
    delivery_.commit(pg::encodePosition(position_));
  };
  maybeReport(true);
  auto next_progress_line = Clock::now() + kProgressLineEvery;
  while (std::optional<SnapshotBatch> batch = readers.next(stop)) {
    const size_t p = batch->part;
    const size_t t = parts[p].table;
    TableRun& run = runs[t];
    if (batch->end) {
      if (held[t] && held[t]->part == p) held[t]->ends_part = true;
      else position_.snapshot_tables[part_state[p]].done = true;
      if (--run.parts_left == 0) {
        progress.tables[t].done = true;
        if (held[t]) {
          flushFinished();
          finished = t;
        }
      }
    } else {
      flushFinished();
      if (held[t]) {
        emit(*held[t], false, false);
        held[t].reset();
      }
      const size_t n = batch->events.size();
      const bool first_of_all = nothing_yet;
      const bool first_of_table = !run.any;
      nothing_yet = false;
      run.any = true;
      // All but the last row now; the last is held.
      for (size_t i = 0; i + 1 < n; ++i) {
        writeAs(i == 0 ? marker(first_of_all, first_of_table, false, false) : "true", p, batch->bytes,
                batch->events[i], batch->first);
      }
      if (n > 1) {
        SnapshotTableState& st = position_.snapshot_tables[part_state[p]];
        st.rows += n - 1;
        if (!batch->keys[n - 2].empty()) st.after = splitKey(batch->keys[n - 2]);
        progress.tables[t].rows += n - 1;
      }
      const core::EncodedChange& last = batch->events[n - 1];
      Held h{.part = p,
             .bytes = batch->bytes.substr(last.at, last.topic + last.key + last.value + last.unchanged + last.text),
             .event = last,
             .key = std::move(batch->keys[n - 1]),
             .row = std::move(batch->last),
             .first_of_all = n == 1 && first_of_all,
             .first_of_table = n == 1 && first_of_table,
             .ends_part = false};
      h.event.at = 0;
      held[t] = std::move(h);
    }
    readers.recycle(std::move(*batch));
    commitChunk();
    maybeReport(false);
    if (Clock::now() >= next_progress_line) {
      next_progress_line = Clock::now() + kProgressLineEvery;
      logProgress(progress);
    }
  }
  if (stop.load()) return false;
  for (size_t t = 0; t < held.size(); ++t) {
    if (held[t] && finished != t) {
      throw Error(ErrorClass::Fatal, "the initial snapshot's readers ended before a table's last row");
    }
  }
  if (finished) emit(*held[*finished], true, true);
  position_.snapshot_pending = false;
  position_.snapshot_tables.clear();
  commitChunk();
  conn.exec("COMMIT", "ending the snapshot transaction");
  progress.done = true;
  progress.ended_us = unixMicrosNow();
  maybeReport(true);
  uint64_t rows = 0;
  for (const auto& t : progress.tables) rows += t.rows;
  log_.info("initial snapshot done: {} row(s) of {} table(s) in {:.1f} s", rows, tables.size(),
            static_cast<double>(progress.ended_us - progress.started_us) * 1e-6);
  return true;
}

}  // namespace tidemark::pg
