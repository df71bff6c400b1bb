// Runs a program as a child process for the tests that check real binaries (failure modes, the
// scale test): arguments passed as they are (no shell), stdout and stderr captured separately,
// the exit status, the wall time and the child's peak resident memory (wait4's ru_maxrss).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace ckpt::testing {

struct ProcessRun {
  int exit_code = -1;    // the exit status, or -1 when the child died of a signal
  int signal = 0;        // the signal that ended it, or 0
  std::string out, err;  // what it wrote
  double wall_s = 0;
  std::int64_t max_rss_bytes = 0;
  bool timed_out = false;  // killed after ProcessOptions::timeout_s
};

struct ProcessOptions {
  std::vector<std::string> environment;  // "NAME=value" entries added to the child's
  // RLIMIT_AS for the child (0: none): makes large allocations fail, to test out-of-memory paths.
  std::int64_t address_space_limit_bytes = 0;
  // Kills the child (SIGKILL) after this many seconds (0: waits as long as it takes).
  double timeout_s = 0;
};

// Runs `program args...` and waits for it.
inline ProcessRun run_process(const std::string& program, const std::vector<std::string>& args,
                              const ProcessOptions& options = {}) {
  ProcessRun run;
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) return run;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    for (const std::string& entry : options.environment) {
      ::putenv(const_cast<char*>(entry.c_str()));
    }
    if (options.address_space_limit_bytes > 0) {
      const rlimit limit{static_cast<rlim_t>(options.address_space_limit_bytes),
                         static_cast<rlim_t>(options.address_space_limit_bytes)};
      ::setrlimit(RLIMIT_AS, &limit);
    }
    std::vector<char*> argv = {const_cast<char*>(program.c_str())};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  std::array<pollfd, 2> fds = {{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  std::array<std::string*, 2> sinks = {&run.out, &run.err};
  int open_fds = 2;
  while (open_fds > 0) {
    int wait_ms = -1;
    if (options.timeout_s > 0) {
      const double left =
          options.timeout_s -
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0 && !run.timed_out) {
        ::kill(pid, SIGKILL);
        run.timed_out = true;
      }
      wait_ms = left <= 0 ? -1 : static_cast<int>(left * 1000) + 1;
    }
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0) break;
    if (ready == 0) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[1 << 16];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      ::close(fds[i].fd);
      fds[i].fd = -1;
      --open_fds;
    }
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.max_rss_bytes = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  return run;
}

}  // namespace ckpt::testing
