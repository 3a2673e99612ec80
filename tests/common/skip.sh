# What a test script does when it cannot run; the shell twin of
# tests/common/test-skip.h. Source it, then:
#   cannot_run "node is not installed"
# exits 77 (meson counts a skip) on a developer's machine, and 1 under
# strict (VOICEAGENT_STRICT=1, which meson sets for -Dstrict=true and so for
# scripts/test and CI), where a suite that does not run must not pass.
# SPDX-License-Identifier: LGPL-2.1-or-later

cannot_run() {
  if [ "${VOICEAGENT_STRICT:-0}" = 1 ]; then
    echo "FAIL: $* (VOICEAGENT_STRICT=1: every test must run; scripts/setup installs what is missing)"
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
