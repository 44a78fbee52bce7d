// Runs the `ckpt` tool (path in the CKPT_TOOL macro) as a child process and captures its exit
// code, stdout and stderr — stderr either to a file or to a pseudo-terminal, so tests can see
// what the tool draws when stderr is a terminal.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

extern char** environ;

namespace tool_test {

struct Result {
  int rc = -1;
  std::string out, err;

  /// stdout parsed as JSON (throws with the output when it is not JSON).
  nlohmann::json json() const {
    try {
      return nlohmann::json::parse(out);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("tool output is not JSON (") + e.what() + "): " + out + " / stderr: " + err);
    }
  }
  /// Lines of stderr (without the line ends).
  std::vector<std::string> err_lines() const {
    std::vector<std::string> v;
    std::string cur;
    for (char c : err) {
      if (c == '\n') {
        v.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) v.push_back(cur);
    return v;
  }
};

inline std::string slurp(const std::filesystem::path& p) {
  auto b = ckpt_test::read_bytes(p);
  return std::string(b.begin(), b.end());
}

/// Run `ckpt args...` with `env` ("NAME=value") added to the environment. With stderr_tty the
/// child's stderr is the slave side of a pseudo-terminal.
inline Result run(const std::vector<std::string>& args, const std::vector<std::string>& env = {}, bool stderr_tty = false) {
  ckpt_test::TempDir tmp;
  const std::string out_path = (tmp / "stdout").string(), err_path = (tmp / "stderr").string();
  std::vector<std::string> argv_s{CKPT_TOOL};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool overridden = false;
    for (const auto& x : env) overridden = overridden || kv.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0;
    if (!overridden) env_s.push_back(kv);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);

  int master = -1, slave = -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (stderr_tty) {
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw std::runtime_error(std::string("openpty: ") + std::strerror(errno));
    posix_spawn_file_actions_adddup2(&fa, slave, 2);
    posix_spawn_file_actions_addclose(&fa, master);
    posix_spawn_file_actions_addclose(&fa, slave);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, CKPT_TOOL, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (slave >= 0) ::close(slave);
  if (rc != 0) {
    if (master >= 0) ::close(master);
    throw std::runtime_error(std::string("cannot start " CKPT_TOOL ": ") + std::strerror(rc));
  }
  Result r;
  if (master >= 0) {  // drain the terminal while the child runs, so it never blocks on a full pty
    char buf[4096];
    for (;;) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        const ssize_t n = ::read(master, buf, sizeof buf);
        if (n > 0) {
          r.err.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;  // EIO: the child closed its side
      }
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid = -1;
        while (true) {  // what is still buffered
          pollfd q{master, POLLIN, 0};
          if (::poll(&q, 1, 0) <= 0) break;
          const ssize_t n = ::read(master, buf, sizeof buf);
          if (n <= 0) break;
          r.err.append(buf, static_cast<std::size_t>(n));
        }
        break;
      }
    }
    ::close(master);
  }
  if (pid > 0) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  r.out = slurp(out_path);
  if (!stderr_tty) r.err = slurp(err_path);
  return r;
}

/// The element of a JSON list of objects whose "key" is `key`, or null.
inline nlohmann::json find_key(const nlohmann::json& list, const std::string& key) {
  for (const auto& j : list)
    if (j.at("key") == key) return j;
  return nullptr;
}

}  // namespace tool_test
