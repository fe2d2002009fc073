// A source: a database's change stream, read into a ChangeWriter (core/change_writer.h). The
// pipeline connects one (PostgreSQL: source/postgres/session.h, one per replication
// connection), runs it on its own thread, and after an error salvages what it wrote and
// connects a new one, which resumes where the store says.
#pragma once

#include <atomic>

namespace tidemark::core {

enum class StopReason {
  Requested,  // `stop` was set
  Until,      // the run's end position (run --until-lsn) was reached
};

class Source {
 public:
  virtual ~Source() = default;

  /// Reads changes into the writer until `stop` is set or the run's end position is reached,
  /// then commits what is whole, confirms it to the server and ends the stream. Throws Error
  /// on failure; a retriable one means: connect again.
  virtual StopReason stream(const std::atomic<bool>& stop) = 0;

  /// After stream() threw: commits the whole transactions already written (confirming nothing;
  /// the next connection resumes there), or, when the writer itself failed, drops what was not
  /// committed. Throws only when even that fails.
  virtual void salvage() = 0;
};

}  // namespace tidemark::core
