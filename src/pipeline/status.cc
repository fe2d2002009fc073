#include "pipeline/status.h"

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tidemark::pipeline {

std::string_view stateName(PipelineState state) {
  switch (state) {
    case PipelineState::Running: return "running";
    case PipelineState::Retrying: return "retrying";
    case PipelineState::Stalled: return "stalled";
    case PipelineState::Stopped: return "stopped";
    case PipelineState::Failed: return "failed";
  }
  return "unknown";
}

std::string isoTime(int64_t unix_us) {
  int64_t secs = unix_us / 1000000;
  int64_t ms = (unix_us % 1000000) / 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::optional<int64_t> parseIsoTime(std::string_view text) {
  std::tm tm{};
  int ms = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7 ||
      s.size() != 24) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000 + ms * 1000;
}

namespace {

using Json = nlohmann::ordered_json;

Json timeOrNull(const std::optional<int64_t>& us) {
  return us ? Json(isoTime(*us)) : Json(nullptr);
}

Json lsnOrNull(const std::optional<Lsn>& lsn) { return lsn ? Json(lsn->str()) : Json(nullptr); }

template <class T>
Json orNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

std::string renderStatus(const config::PipelineConfig& cfg, const StatusInput& in) {
  using json = Json;
  const Freshness& f = in.session.freshness;
  json j;
  j["pipeline"] = cfg.name;
  j["state"] = stateName(in.state);
  j["reason"] = in.reason.empty() ? json(nullptr) : json(in.reason);
  j["updated_at"] = isoTime(in.now_us);
  j["pid"] = orNull(in.pid);

  json hb;
  hb["mode"] = cfg.heartbeat.mode;
  hb["interval_ms"] = cfg.heartbeat.interval.count();
  hb["last_written_at"] = timeOrNull(in.monitor.last_written_us);
  hb["last_observed_at"] = timeOrNull(f.observed_at_us);
  hb["last_observed_written_at"] = timeOrNull(f.observed_written_us);
  hb["age_ms"] = f.observed_written_us ? json((in.now_us - *f.observed_written_us) / 1000) : json(nullptr);
  hb["e2e_lag_ms"] = f.observed_written_us && f.observed_at_us
                         ? json((*f.observed_at_us - *f.observed_written_us) / 1000)
                         : json(nullptr);
  hb["problem"] = in.monitor.problem.empty() ? json(nullptr) : json(in.monitor.problem);
  json sinks = json::object();
  for (const auto& s : cfg.sinks) {
    json one;
    one["delivered_at"] = timeOrNull(f.delivered_at_us);
    one["delivered_lag_ms"] = f.delivered_at_us && f.delivered_written_us
                                  ? json((*f.delivered_at_us - *f.delivered_written_us) / 1000)
                                  : json(nullptr);
    sinks[s.name] = one;
  }
  hb["sinks"] = sinks;
  j["heartbeat"] = hb;

  json slot;
  slot["name"] = cfg.source.slot;
  const std::optional<SlotFigures>& sf = in.monitor.slot;
  slot["confirmed_flush_lsn"] = sf ? lsnOrNull(sf->confirmed_flush_lsn) : json(nullptr);
  slot["restart_lsn"] = sf ? lsnOrNull(sf->restart_lsn) : json(nullptr);
  slot["retained_wal_bytes"] = sf ? orNull(sf->retained_wal_bytes) : json(nullptr);
  slot["wal_status"] = sf ? orNull(sf->wal_status) : json(nullptr);
  slot["safe_wal_size"] = sf ? orNull(sf->safe_wal_size) : json(nullptr);
  slot["active"] = sf ? json(sf->active) : json(nullptr);
  slot["checked_at"] = sf ? json(isoTime(sf->checked_at_us)) : json(nullptr);
  j["slot"] = slot;

  auto lsnText = [](Lsn l) { return l.valid() ? json(l.str()) : json(nullptr); };
  j["positions"] = {{"received_lsn", lsnText(in.session.received)},
                    {"durable_lsn", lsnText(in.session.durable)},
                    {"acknowledged_lsn", lsnText(in.session.acknowledged)}};
  j["events"] = {{"delivered", in.session.events_delivered}};
  return j.dump();
}

}  // namespace tidemark::pipeline
