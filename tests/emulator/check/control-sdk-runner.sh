#!/usr/bin/env bash
# Runs one SDK conformance script against a fresh voiceagent-emulator.
#   control-sdk-runner.sh WORKDIR TEST.mjs [EMULATOR ARGS...]
# WORKDIR (in the build tree) gets package.json + package-lock.json from the
# source folder and `npm ci` when its node_modules is missing or stale (CI
# reaches the npm registry). The emulator runs with --port 0 and fixed keys;
# the script gets EMULATOR_URL, EMULATOR_OPENAI_KEY, EMULATOR_ELEVENLABS_KEY,
# EMULATOR_DEEPGRAM_KEY. Without node or npm it skips (exit 77), or fails
# under strict (tests/common/skip.sh).
set -euo pipefail
# shellcheck source=../../common/skip.sh
. "$(dirname "$0")/../../common/skip.sh"

work="$1"
test_js="$2"
shift 2
src="$(cd "$(dirname "$test_js")" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  cannot_run "node/npm not found; install Node.js >= 20 (scripts/setup does) to run the SDK conformance tests"
fi
if [ -z "${VOICEAGENT_EMULATOR:-}" ]; then
  echo "VOICEAGENT_EMULATOR is not set (run through meson test)" >&2
  exit 1
fi

mkdir -p "$work"
(
  flock 9
  if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    echo "npm ci in $work"
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  fi
) 9>"$work/.lock"
cp "$test_js" "$work/"

port_file="$(mktemp)"
log="$(mktemp)"
export EMULATOR_OPENAI_KEY=sk-emulator-test
export EMULATOR_ELEVENLABS_KEY=el-emulator-test
export EMULATOR_DEEPGRAM_KEY=dg-emulator-test
"$VOICEAGENT_EMULATOR" --port 0 --port-file "$port_file" --tts-engine espeak-ng \
  --openai-key "$EMULATOR_OPENAI_KEY" --elevenlabs-key "$EMULATOR_ELEVENLABS_KEY" \
  --deepgram-key "$EMULATOR_DEEPGRAM_KEY" "$@" >"$log" 2>&1 &
emu_pid=$!
cleanup() {
  kill -TERM "$emu_pid" 2>/dev/null || true
  wait "$emu_pid" 2>/dev/null
  emu_rc=$?
  echo "--- emulator log (exit $emu_rc)"
  cat "$log"
  rm -f "$port_file" "$log"
}
trap cleanup EXIT

for _ in $(seq 1 200); do
  [ -s "$port_file" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { echo "emulator exited early" >&2; exit 1; }
  sleep 0.05
done
[ -s "$port_file" ] || { echo "emulator did not listen" >&2; exit 1; }
export EMULATOR_URL="http://127.0.0.1:$(tr -d '\n' <"$port_file")"

cd "$work"
set +e
node --test "$(basename "$test_js")"
rc=$?
trap - EXIT
cleanup
# A clean exit on SIGTERM is part of the contract (no leaks under ASan).
if [ "$rc" -eq 0 ] && [ "$emu_rc" -ne 0 ]; then
  echo "voiceagent-emulator exited with status $emu_rc" >&2
  rc=1
fi
exit "$rc"
