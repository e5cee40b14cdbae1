#!/usr/bin/env bash
# bench-overlay-profile.sh — where an overlay call's CPU goes, beyond its crypto. One sentinel,
# one math agent and `fame bench` with 50 callers, every process in the overlay profile; CPU
# profiles of the sentinel (FAME_PPROF) and the client (-cpuprofile) over the measured window,
# split into ed25519 verification, ed25519 signing, the rest of the security package (signing
# digests, canonical JSON, key lookups), system calls, garbage collection and allocation, and
# everything else. Prints a markdown table (share of each process's samples).
#
#   BIN=bin GO=go scripts/bench-overlay-profile.sh        (make bench-overlay-profile)
#   OVERLAY_PROFILE_KEEP=DIR keeps sentinel.prof and client.prof there; OVERLAY_PROFILE_D=10 seconds
set -euo pipefail
GO=${GO:-go}
D=${OVERLAY_PROFILE_D:-10}
DEMO=bench-overlay-profile
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh" # work, pids, cleanup, wait_for, start_sentinel

export FAME_SECURITY_PROFILE=overlay FAME_ADMISSION_PROFILE=open FAME_AUTHORIZATION_PROFILE=noop
FAME_PPROF=true FAME_LOG_LEVEL=warning start_sentinel
url="ws://$addr/fame/v1/attach/ws/downstream"
FAME_DIRECT_ADMISSION_URL=$url MATH_LOGICAL=fame.fabric AGENT_NAME=bench \
  "$BIN/math-agent" >"$work/agent.out" 2>"$work/agent.log" &
pids+=($!)
wait_for "$work/agent.out" READY 30

"$BIN/fame" bench -url "$url" -c 50 -d "${D}s" -warmup 2s -cpuprofile "$work/client.prof" >"$work/bench.txt" 2>&1 &
bench=$!
sleep 2
curl -fsS -o "$work/sentinel.prof" "http://$addr/debug/pprof/profile?seconds=$D"
wait "$bench"
if [[ -n ${OVERLAY_PROFILE_KEEP:-} ]]; then # a directory to keep the two profiles in
  mkdir -p "$OVERLAY_PROFILE_KEEP" && cp "$work/sentinel.prof" "$work/client.prof" "$OVERLAY_PROFILE_KEEP/"
fi

# share PROFILE FOCUS [IGNORE]: percent of the profile's samples with a frame matching FOCUS
# and none matching IGNORE (every node shown, so that "accounting for" is all of them).
share() {
  local args=(-top -nodecount=1000000 -nodefraction=0 -edgefraction=0 "-focus=$2")
  [[ -n ${3:-} ]] && args+=("-ignore=$3")
  "$GO" tool pprof "${args[@]}" "$BIN/fame" "$1" 2>/dev/null |
    sed -n 's/^Showing nodes accounting for [^,]*, \([0-9.]*\)% of .*/\1/p' | head -1
}
# seconds PROFILE: CPU seconds the profile sampled, scaled to the measured window of D seconds
# (the client's profile also covers the warm-up).
seconds() {
  "$GO" tool pprof -top -nodecount=1 "$BIN/fame" "$1" 2>/dev/null | awk -v d="$D" '
    /^Duration:/ { dur = $2; sub(/s,?$/, "", dur) }
    /% of .* total/ { for (i = 1; i <= NF; i++) if ($i == "total") t = $(i - 1) }
    END {
      v = t; unit = t; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", unit)
      if (unit == "ms") v /= 1000
      printf "%.2f", v * d / dur
    }'
}
calls=$(sed -n 's/.*calls *\([0-9]*\) ok.*/\1/p' "$work/bench.txt" | head -1)
# cell PROFILE FOCUS IGNORE: "µs per call (share %)".
cell() {
  local pct secs
  pct=$(share "$1" "$2" "$3")
  secs=$(seconds "$1")
  awk -v p="${pct:-0}" -v s="$secs" -v n="$calls" 'BEGIN { printf "%.1f µs (%.1f %%)", p / 100 * s * 1e6 / n, p }'
}
# label ; focus ; ignore (pprof regexps): each sample counted in the first row that matches it
rows=(
  "ed25519 verification;ed25519.*[Vv]erify;"
  "ed25519 signing;ed25519.*[Ss]ign;[Vv]erify"
  "the rest of security (digests, canonical JSON, keys);fame/security;ed25519"
  "system calls;Syscall6;fame/security"
  "GC and allocation;gcBgMarkWorker|mallocgc|gcAssist;fame/security|Syscall6"
)

echo "### Overlay, 50 callers: where the CPU goes (\`make bench-overlay-profile\`)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'): $calls calls in ${D}s at 50 callers,"
echo "every process in the overlay profile. CPU per call from each process's profile, scaled to the"
echo "measured window (sentinel $(seconds "$work/sentinel.prof") s, client $(seconds "$work/client.prof") s of CPU in ${D}s); each sample counted in the first row it matches:"
echo
echo "| where | sentinel | client (\`fame bench\`) |"
echo "|---|---|---|"
for r in "${rows[@]}"; do
  IFS=';' read -r label focus ignore <<<"$r"
  echo "| $label | $(cell "$work/sentinel.prof" "$focus" "$ignore") | $(cell "$work/client.prof" "$focus" "$ignore") |"
done
echo "| everything else (routing, JSON, WebSocket framing, scheduling) | $(cell "$work/sentinel.prof" . "ed25519|fame/security|Syscall6|gcBgMarkWorker|mallocgc|gcAssist") | $(cell "$work/client.prof" . "ed25519|fame/security|Syscall6|gcBgMarkWorker|mallocgc|gcAssist") |"
echo "| total | $(cell "$work/sentinel.prof" . "") | $(cell "$work/client.prof" . "") |"
