// The pipeline's status document (docs/STATUS.md): what `tidemark status` prints. The run
// process builds it from the session's positions and freshness, the source monitor's
// snapshot and its own state, and saves it in the state store every two seconds and on every
// change of state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/lsn.h"
#include "config/config.h"
#include "pipeline/source_monitor.h"

namespace tidemark::pipeline {

enum class PipelineState { Running, Retrying, Stalled, Stopped, Failed };

std::string_view stateName(PipelineState state);

/// How fresh the data that came through the stream is. Times are Unix microseconds; the
/// "written" ones are source times (heartbeat timestamps, commit times).
struct Freshness {
  std::optional<int64_t> observed_written_us;  // latest heartbeat or captured commit seen
  std::optional<int64_t> observed_at_us;       // when it was seen
  std::optional<int64_t> heartbeat_written_us; // latest Layer 2 heartbeat seen
  std::optional<int64_t> delivered_written_us; // latest one durable in the sinks
  std::optional<int64_t> delivered_at_us;      // when it became durable
};

struct SessionStatus {
  Lsn received;
  Lsn durable;
  Lsn acknowledged;
  uint64_t events_delivered = 0;
  Freshness freshness;
};

struct StatusInput {
  PipelineState state = PipelineState::Running;
  std::string reason;
  std::optional<int> pid;
  SessionStatus session;
  MonitorSnapshot monitor;
  int64_t now_us = 0;
};

/// The status document as JSON.
std::string renderStatus(const config::PipelineConfig& cfg, const StatusInput& in);

/// "2026-11-21T06:01:02.345Z" for Unix microseconds (millisecond precision).
std::string isoTime(int64_t unix_us);
/// The inverse of isoTime; nullopt for any other text.
std::optional<int64_t> parseIsoTime(std::string_view text);

}  // namespace tidemark::pipeline
