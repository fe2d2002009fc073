#include "support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tidemark::test {
namespace {

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Everything the child needs is prepared before fork(), because only async-signal-safe calls
// are allowed between fork() and exec() in a process that may have threads.
struct ExecPlan {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::vector<char*> argvPtrs;
  std::vector<char*> envPtrs;
  std::string stdoutPath;
  std::string stderrPath;
  std::string cwd;
};

}  // namespace

Process::Process(std::vector<std::string> argv, ProcessOptions options) : argv_(std::move(argv)) {
  if (argv_.empty()) throw std::invalid_argument("Process: empty argv");

  ExecPlan plan;
  plan.argv = argv_;
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : options.env) env[k] = v;
  for (auto& [k, v] : env) plan.env.push_back(k + "=" + v);
  for (auto& a : plan.argv) plan.argvPtrs.push_back(a.data());
  plan.argvPtrs.push_back(nullptr);
  for (auto& e : plan.env) plan.envPtrs.push_back(e.data());
  plan.envPtrs.push_back(nullptr);
  plan.stdoutPath = (dir_ / "stdout").string();
  plan.stderrPath = (dir_ / "stderr").string();
  plan.cwd = options.cwd.string();

  // The child's stdout pipe: the child gets the write end as fd 1, the parent keeps the read
  // end. Both close-on-exec, so the child keeps only its dup2'ed copy.
  int outPipe[2] = {-1, -1};
  if (options.stdoutPipe && ::pipe2(outPipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  }
  const int outPipeWrite = outPipe[1];

  // A pipe closed on a successful exec tells the parent whether exec worked; on failure the
  // child writes errno into it.
  int errPipe[2];
  if (::pipe2(errPipe, O_CLOEXEC) != 0) {
    int err = errno;
    if (outPipe[0] >= 0) {
      ::close(outPipe[0]);
      ::close(outPipe[1]);
    }
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(err));
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    int err = errno;
    ::close(errPipe[0]);
    ::close(errPipe[1]);
    if (outPipe[0] >= 0) {
      ::close(outPipe[0]);
      ::close(outPipe[1]);
    }
    throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  }
  if (pid_ == 0) {
    auto fail = [&](int err) {
      ssize_t ignored = ::write(errPipe[1], &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    };
    // If the test binary dies (crash, SIGKILL) the child must not live on unsupervised.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
    if (::getppid() != parent) ::_exit(127);
    int in = ::open("/dev/null", O_RDONLY);
    int out = outPipeWrite >= 0 ? outPipeWrite
                                : ::open(plan.stdoutPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(plan.stderrPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) fail(errno);
    if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) fail(errno);
    // Leave only stdin/stdout/stderr and the error pipe (close-on-exec) open in the child.
    for (int fd : {in, out, err}) {
      if (fd > 2) ::close(fd);
    }
    if (!plan.cwd.empty() && ::chdir(plan.cwd.c_str()) != 0) fail(errno);
    // Reset signal dispositions a test framework may have changed.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvpe(plan.argvPtrs[0], plan.argvPtrs.data(), plan.envPtrs.data());
    fail(errno);
  }
  ::close(errPipe[1]);
  if (outPipe[0] >= 0) {
    ::close(outPipe[1]);
    stdoutPipeFd_ = outPipe[0];
    // stdoutText() reads the file; it exists (empty) until drainStdout() fills it.
    std::ofstream touch(dir_ / "stdout", std::ios::binary | std::ios::trunc);
  }
  int childErr = 0;
  ssize_t n;
  do {
    n = ::read(errPipe[0], &childErr, sizeof childErr);
  } while (n < 0 && errno == EINTR);
  ::close(errPipe[0]);
  if (n > 0) {
    reap(true);
    stopDrain();
    throw std::runtime_error("cannot execute " + argv_[0] + ": " + std::strerror(childErr));
  }
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    try {
      reap(true);
    } catch (...) {
    }
  }
  stopDrain();
}

void Process::stopDrain() {
  // The child is gone, so the pipe reaches its end and the drain thread ends by itself.
  if (drainThread_.joinable()) drainThread_.join();
  if (stdoutPipeFd_ >= 0) {
    ::close(stdoutPipeFd_);
    stdoutPipeFd_ = -1;
  }
}

size_t Process::stdoutPipeBuffered() const {
  if (stdoutPipeFd_ < 0) return 0;
  int n = 0;
  if (::ioctl(stdoutPipeFd_, FIONREAD, &n) != 0) return 0;
  return static_cast<size_t>(n);
}

void Process::drainStdout() {
  if (stdoutPipeFd_ < 0 || drainThread_.joinable()) return;
  const int fd = stdoutPipeFd_;
  const std::string path = (dir_ / "stdout").string();
  drainThread_ = std::thread([fd, path] {
    int out = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t off = 0; off < n && out >= 0;) {
        ssize_t w = ::write(out, buf + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += w;
      }
    }
    if (out >= 0) ::close(out);
  });
}

bool Process::reap(bool block) {
  if (reaped_) return true;
  struct rusage ru {};
  int status = 0;
  pid_t r;
  do {
    r = ::wait4(pid_, &status, block ? 0 : WNOHANG, &ru);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    rusage_ = ru;
    return true;
  }
  if (r < 0) {
    throw std::runtime_error("wait4(" + std::to_string(pid_) + "): " + std::strerror(errno));
  }
  return false;
}

bool Process::running() { return !reap(false); }

std::optional<int> Process::waitExit(std::chrono::milliseconds timeout) {
  // The child is not necessarily the only one, so SIGCHLD cannot be used to wake up; a short
  // poll of wait4(WNOHANG) is simple and cheap at this step.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return std::nullopt;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::optional<int> Process::termSignal() const {
  if (reaped_ && WIFSIGNALED(status_)) return WTERMSIG(status_);
  return std::nullopt;
}

std::string Process::stdoutText() const { return readFile(dir_ / "stdout"); }
std::string Process::stderrText() const { return readFile(dir_ / "stderr"); }

std::optional<long> Process::maxRssKiB() const {
  if (!rusage_) return std::nullopt;
  return rusage_->ru_maxrss;
}

std::string Process::describe() const {
  std::ostringstream ss;
  ss << "command:";
  for (const auto& a : argv_) ss << ' ' << a;
  ss << "\npid " << pid_ << ", ";
  if (!reaped_) {
    ss << "still running";
  } else if (WIFEXITED(status_)) {
    ss << "exit code " << WEXITSTATUS(status_);
  } else if (WIFSIGNALED(status_)) {
    ss << "killed by signal " << WTERMSIG(status_);
  }
  constexpr size_t kTail = 4000;
  std::string err = stderrText();
  if (err.size() > kTail) err = "..." + err.substr(err.size() - kTail);
  std::string out = stdoutText();
  if (out.size() > kTail) out = "..." + out.substr(out.size() - kTail);
  ss << "\n--- stderr ---\n" << err << "\n--- stdout ---\n" << out << "\n---";
  return ss.str();
}

}  // namespace tidemark::test
