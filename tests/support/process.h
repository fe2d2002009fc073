// A child process for tests: fork/exec of an argv vector with stdout and stderr captured into
// files (not pipes, so a chatty child can never block on a full pipe while the test waits for
// it), bounded waits, signals, and the child's resource usage once it has been reaped.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/temp_dir.h"

namespace tidemark::test {

struct ProcessOptions {
  /// Added to (or replacing entries of) the test process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  /// Working directory of the child; the test's own when empty.
  std::filesystem::path cwd;
  /// Give the child a pipe as stdout instead of a file. Nobody reads it until the test calls
  /// drainStdout(), so a child that writes more than the pipe holds (64 KiB) blocks: a slow
  /// consumer on demand. What is drained goes to the same file stdoutText() reads.
  bool stdoutPipe = false;
};

class Process {
 public:
  /// Starts argv[0] (looked up in PATH when it has no '/'). Throws std::runtime_error when the
  /// fork fails or the program cannot be executed.
  explicit Process(std::vector<std::string> argv, ProcessOptions options = {});
  /// Kills the child with SIGKILL and reaps it when it is still running.
  ~Process();

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }

  /// True until the child has exited (reaps it when it has).
  bool running();

  /// Waits up to `timeout` for the child to exit. Returns its exit code, or 128 + the signal
  /// number when a signal ended it (as a shell reports it); nothing on timeout.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);

  /// Sends `sig` to the child; does nothing once it has been reaped.
  void signal(int sig);

  /// The signal that ended the child, when one did.
  std::optional<int> termSignal() const;

  /// Everything the child wrote so far (with stdoutPipe: what has been drained so far).
  std::string stdoutText() const;

  /// With stdoutPipe: the bytes written into the pipe and not read yet (FIONREAD).
  size_t stdoutPipeBuffered() const;
  /// With stdoutPipe: starts a thread that reads the pipe to its end (the child exits and
  /// closes it) into the stdout file. Idempotent.
  void drainStdout();
  std::string stderrText() const;

  /// The child's resource usage (wait4), available once it has been reaped.
  const std::optional<struct rusage>& resourceUsage() const { return rusage_; }
  /// Peak resident set size of the child in KiB (ru_maxrss), once reaped.
  std::optional<long> maxRssKiB() const;

  /// The command line, how it ended and the tail of its stderr; for assertion messages.
  std::string describe() const;

 private:
  bool reap(bool block);
  void stopDrain();

  std::vector<std::string> argv_;
  TempDir dir_{"tidemark-proc"};
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::optional<struct rusage> rusage_;
  int stdoutPipeFd_ = -1;  // read end of the child's stdout pipe (stdoutPipe)
  std::thread drainThread_;
};

}  // namespace tidemark::test
