#include "cli/status_command.h"

#include <cstdio>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "base/lsn.h"
#include "core/offset_store.h"
#include "pipeline/status.h"
#include "postgres/connection.h"
#include "source/postgres/source_monitor.h"
#include "state/sqlite_store.h"

namespace tidemark::cli {

namespace {

using Json = nlohmann::ordered_json;

// The slot's figures read now, when no run process keeps them fresh (WAL retained by a
// stopped pipeline keeps growing), with the backlog they imply. Leaves the saved figures when
// the source cannot be reached (or no credentials are at hand), and says so: `figures` is
// "live" or "saved", with `figures_note` saying why.
void refreshSlot(const config::PipelineConfig& cfg, Json& s) {
  Json& slot = s["slot"];
  // A stopped pipeline reads nothing: its rates are none, and its backlog is what the slot
  // says now, or unknown.
  s["progress"]["bytes_per_second"] = nullptr;
  s["progress"]["events_per_second"] = nullptr;
  s["progress"]["eta_seconds"] = nullptr;
  s["progress"]["backlog_bytes"] = nullptr;
  try {
    pg::ConnectOptions o = pg::sourceOptions(cfg.source, "tidemark-status");
    o.connect_timeout = std::chrono::seconds(3);  // status answers quickly, reachable or not
    pg::Connection conn = pg::Connection::open(o);
    pg::Result r = conn.execParams(
        "SELECT confirmed_flush_lsn::text, restart_lsn::text, "
        "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
        "ELSE pg_current_wal_lsn() END, restart_lsn)::bigint, wal_status, safe_wal_size, active, "
        "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
        "ELSE pg_current_wal_lsn() END, confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = $1",
        {cfg.source.slot}, "reading the slot");
    if (PQntuples(r.get()) == 0) {
      slot["confirmed_flush_lsn"] = nullptr;
      slot["restart_lsn"] = nullptr;
      slot["retained_wal_bytes"] = nullptr;
      slot["wal_status"] = "missing";
      slot["active"] = false;
    } else {
      auto v = [&](int col) { return pg::value(r.get(), 0, col); };
      auto textOrNull = [](const std::optional<std::string>& t) { return t ? Json(*t) : Json(nullptr); };
      auto intOrNull = [](const std::optional<std::string>& t) {
        return t ? Json(std::stoll(*t)) : Json(nullptr);
      };
      slot["confirmed_flush_lsn"] = textOrNull(v(0));
      slot["restart_lsn"] = textOrNull(v(1));
      slot["retained_wal_bytes"] = intOrNull(v(2));
      slot["wal_status"] = textOrNull(v(3));
      slot["safe_wal_size"] = intOrNull(v(4));
      slot["active"] = v(5) == "t";
      s["progress"]["backlog_bytes"] = intOrNull(v(6));
    }
    slot["checked_at"] = isoTime(unixMicrosNow());
    slot["figures"] = "live";
    slot["figures_note"] = nullptr;
  } catch (const Error& e) {
    // Unreachable, or no credentials: the saved figures stand, with their checked_at.
    slot["figures"] = "saved";
    slot["figures_note"] = fmt::format("as the run process last saw them; the source could not be read now: {}",
                                       e.what());
  }
}

std::string orDash(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string millis(const Json& v) {
  if (v.is_null()) return "-";
  return fmt::format("{:.1f} s", static_cast<double>(v.get<int64_t>()) / 1000.0);
}

void printText(const Json& s) {
  const Json& hb = s["heartbeat"];
  const Json& slot = s["slot"];
  const Json& pos = s["positions"];
  std::cout << fmt::format("pipeline {}: {}", orDash(s["pipeline"]), orDash(s["state"]));
  if (!s["reason"].is_null()) std::cout << " (" << orDash(s["reason"]) << ")";
  std::cout << "\n";
  std::cout << fmt::format("  freshness   age {}, end-to-end lag {}, last observed {} (written {})\n",
                           millis(hb["age_ms"]), millis(hb["e2e_lag_ms"]),
                           orDash(hb["last_observed_at"]), orDash(hb["last_observed_written_at"]));
  std::cout << fmt::format("  heartbeat   mode {}, every {}, last written {}\n", orDash(hb["mode"]),
                           millis(hb["interval_ms"]), orDash(hb["last_written_at"]));
  if (!hb["problem"].is_null()) std::cout << "  PROBLEM     " << orDash(hb["problem"]) << "\n";
  for (const auto& [name, sink] : hb["sinks"].items()) {
    std::cout << fmt::format("  sink {:<6} delivered lag {}, at {}\n", name, millis(sink["delivered_lag_ms"]),
                             orDash(sink["delivered_at"]));
  }
  std::cout << fmt::format("  slot        {} confirmed {}, restart {}, retained WAL {} bytes, "
                           "wal_status {}, active {} ({} at {})\n",
                           orDash(slot["name"]), orDash(slot["confirmed_flush_lsn"]),
                           orDash(slot["restart_lsn"]), orDash(slot["retained_wal_bytes"]),
                           orDash(slot["wal_status"]), orDash(slot["active"]),
                           slot.value("figures", "saved") == "live" ? "read" : "saved",
                           orDash(slot["checked_at"]));
  if (slot.contains("figures_note") && !slot["figures_note"].is_null()) {
    std::cout << "              " << orDash(slot["figures_note"]) << "\n";
  }
  std::cout << fmt::format("  positions   received {}, durable {}, acknowledged {}\n",
                           orDash(pos["received_lsn"]), orDash(pos["durable_lsn"]),
                           orDash(pos["acknowledged_lsn"]));
  std::cout << fmt::format("  events      {} captured into the change log by this run; status saved {}\n",
                           orDash(s["events"]["delivered"]), orDash(s["updated_at"]));
  if (s.contains("snapshot") && s["snapshot"].is_object()) {
    const Json& snap = s["snapshot"];
    std::cout << fmt::format("  snapshot    {}, {} of {} rows, {} rows/s, ETA {} s\n", orDash(snap["state"]),
                             orDash(snap["rows"]), orDash(snap["estimated_rows"]), orDash(snap["rows_per_second"]),
                             orDash(snap["eta_seconds"]));
  }
  if (s.contains("incremental_snapshot") && s["incremental_snapshot"].is_object()) {
    const Json& inc = s["incremental_snapshot"];
    std::string left;
    for (const Json& t : inc["tables"]) left += (left.empty() ? "" : ", ") + t["table"].get<std::string>();
    std::cout << fmt::format("  incremental {} {}, {} rows read by this run{}\n", orDash(inc["id"]), orDash(inc["state"]),
                             orDash(inc["rows"]), left.empty() ? "" : "; tables left: " + left);
  }
  if (s.contains("signals") && s["signals"].is_object() && s["signals"]["refused"].is_number() &&
      s["signals"]["refused"].get<int64_t>() > 0) {
    std::cout << fmt::format("  signals     {} refused; last: {}\n", orDash(s["signals"]["refused"]),
                             orDash(s["signals"]["last_error"]));
  }
  if (s.contains("log") && s["log"].is_object()) {
    const Json& log = s["log"];
    std::cout << fmt::format("  change log  {} of {} bytes, offsets {} to {}, oldest unconsumed {} (held by {})\n",
                             orDash(log["size_bytes"]), orDash(log["max_bytes"]), orDash(log["start_offset"]),
                             orDash(log["end_offset"]), orDash(log["oldest_unconsumed_offset"]),
                             orDash(log["held_by"]));
  }
  if (s.contains("sinks") && s["sinks"].is_object()) {
    for (const auto& [name, sink] : s["sinks"].items()) {
      const bool dead = sink.contains("dead_letters") && sink["dead_letters"].is_number() &&
                        sink["dead_letters"].get<uint64_t>() > 0;
      std::cout << fmt::format("  sink {:<6} {} at offset {}, {} records behind, lag {} s{}{}\n", name,
                               orDash(sink["state"]), orDash(sink["position"]), orDash(sink["lag_records"]),
                               orDash(sink["lag_seconds"]),
                               dead ? fmt::format(", {} in the dead letter queue (tidemark dlq list)",
                                                  orDash(sink["dead_letters"]))
                                    : "",
                               sink["last_error"].is_null() ? "" : fmt::format(" ({})", orDash(sink["last_error"])));
    }
  }
}

}  // namespace

int statusCommand(const config::PipelineConfig& cfg, bool json) {
  state::StatusRecord record = state::readStatus(cfg.state_dir);
  if (!record.json) {
    std::cerr << fmt::format("pipeline {} has no status: it has not run with state_dir {}\n", cfg.name,
                             cfg.state_dir.string());
    return kExitUsage;
  }
  Json s = Json::parse(*record.json);
  std::string state = s.value("state", "");
  if (!record.running) {
    if (state == "starting" || state == "running" || state == "paused" || state == "retrying" ||
        state == "stalled") {
      s["state"] = "stopped";
      s["reason"] = fmt::format("no tidemark process is running this pipeline (its last status was "
                                "{}, saved {})",
                                state, s.value("updated_at", "?"));
    }
    s["pid"] = nullptr;
    refreshSlot(cfg, s);
  } else {
    s["slot"]["figures"] = "live";  // the run process keeps them fresh
    s["slot"]["figures_note"] = nullptr;
  }
  // Age is measured now, not when the status was saved: it keeps growing while nothing new
  // comes through.
  Json& hb = s["heartbeat"];
  if (hb["last_observed_written_at"].is_string()) {
    if (auto written = parseIsoTime(hb["last_observed_written_at"].get<std::string>())) {
      hb["age_ms"] = (unixMicrosNow() - *written) / 1000;
    }
  }
  if (json) {
    std::cout << s.dump(2) << "\n";
  } else {
    printText(s);
  }
  state = s.value("state", "");
  return state == "running" || state == "stopped" || state == "starting" ? kExitOk : kExitRuntime;
}

}  // namespace tidemark::cli
