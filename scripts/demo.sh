#!/usr/bin/env bash
# betasync demo: the daemon (embedded NATS) and an example pod on this
# machine, then the admin flow with curl, and a mapping edit that the pod
# picks up without a restart.
#
# Needs only Go and curl. Uses ports 14000 (API), 14222 (NATS) and 18080
# (pod) on 127.0.0.1, and a temporary directory that is removed on exit.
#
#   bash scripts/demo.sh        (or: make demo)
#
# The daemon runs in local-only mode (LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True)
# on a copy of default_mapping.json, so the demo needs no network: "reload"
# re-reads that copy. Against the real upstream file, leave both variables
# unset.
set -euo pipefail

cd "$(dirname "$0")/.."

KEY=sk-demo
API=http://127.0.0.1:14000
POD=http://127.0.0.1:18080
NATS_ADDR=127.0.0.1:14222
HEADER='anthropic-beta: context-1m-2025-08-07,advanced-tool-use-2025-11-20'

tmp=$(mktemp -d "${TMPDIR:-/tmp}/betasync-demo.XXXXXX")
daemon_pid=
pod_pid=

stop() { # stop PID: SIGTERM, then wait for it to exit
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	stop "$pod_pid"
	stop "$daemon_pid"
	if [ "$rc" -ne 0 ]; then
		echo
		echo "demo failed (exit $rc); last lines of the logs:"
		for f in "$tmp"/betasync.log "$tmp"/examplepod.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

bold= plain=
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { # print a command, quoted so it can be pasted, then run it
	local a line='$'
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			line+=" $a"
		elif [[ $a != *"'"* ]]; then
			line+=" '$a'"
		else
			line+=" $(printf '%q' "$a")"
		fi
	done
	printf '%s\n' "$line"
	"$@"
	echo
}
api() { # api METHOD PATH: an admin call with the master key
	run curl -sS -X "$1" -H "Authorization: Bearer $KEY" "$API$2"
}
pod_filter() {
	run curl -sS -H "$HEADER" "$POD/filter?provider=bedrock"
}
pod_version() {
	curl -sS "$POD/readyz" | sed -n 's/.*"version":\([0-9]*\).*/\1/p'
}
wait_for() { # wait_for NAME URL PID: poll URL until it answers 200, at most 30 s
	local name=$1 url=$2 pid=$3
	for _ in $(seq 1 150); do
		if curl -fsS -o /dev/null "$url" 2>/dev/null; then
			echo "$name is ready ($url)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before it was ready" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "$name was not ready within 30 s" >&2
	return 1
}
port_free() { # fail early, with the fix, when a demo port is taken
	# bash's /dev/tcp connects to any listener, HTTP or not (NATS included).
	if (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; then
		echo "something already listens on $1; stop it and run the demo again" >&2
		exit 1
	fi
}

for addr in 127.0.0.1:14000 "$NATS_ADDR" 127.0.0.1:18080; do port_free "$addr"; done

step "build betasync and examplepod"
run go build -o "$tmp/bin/" ./cmd/betasync ./cmd/examplepod

cp default_mapping.json "$tmp/mapping.json"
run "$tmp/bin/betasync" validate "$tmp/mapping.json"

step "start the daemon (embedded NATS at $NATS_ADDR, API at $API)"
BETASYNC_DATA_DIR="$tmp/data" \
	BETASYNC_NATS_LISTEN="$NATS_ADDR" \
	BETASYNC_HTTP_ADDR=127.0.0.1:14000 \
	LITELLM_MASTER_KEY="$KEY" \
	LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True \
	BETASYNC_LOCAL_CONFIG="$tmp/mapping.json" \
	BETASYNC_REPLICA_ID=demo-1 \
	BETASYNC_LOG_FORMAT=text \
	"$tmp/bin/betasync" >"$tmp/betasync.log" 2>&1 &
daemon_pid=$!
wait_for "the daemon" "$API/readyz" "$daemon_pid"

step "start the example pod (it embeds the subscriber; $POD)"
NATS_URL="nats://$NATS_ADDR" POD_HTTP_ADDR=127.0.0.1:18080 \
	"$tmp/bin/examplepod" >"$tmp/examplepod.log" 2>&1 &
pod_pid=$!
wait_for "the pod" "$POD/readyz" "$pod_pid"

step "reload now (LiteLLM's endpoint)"
api POST /reload/anthropic_beta_headers

step "schedule a reload every 24 hours (shared by every replica)"
api POST '/schedule/anthropic_beta_headers_reload?hours=24'

step "status"
api GET /schedule/anthropic_beta_headers_reload/status

step "cancel the schedule"
api DELETE /schedule/anthropic_beta_headers_reload

step "status again"
api GET /schedule/anthropic_beta_headers_reload/status

step "what the pod sends to Bedrock now"
pod_filter
before=$(pod_version)

step "edit the mapping: Bedrock no longer accepts context-1m-2025-08-07"
run sed -i.bak '/^  "bedrock": {/,/^  }/ s/"context-1m-2025-08-07": "context-1m-2025-08-07"/"context-1m-2025-08-07": null/' "$tmp/mapping.json"
run grep -n '"context-1m-2025-08-07": null' "$tmp/mapping.json"

step "reload: a new version is stored in KV and pushed on config.updated"
api POST /reload/anthropic_beta_headers

# The push takes milliseconds; allow up to 5 s before calling it a failure.
for _ in $(seq 1 50); do
	[ "$(pod_version)" != "$before" ] && break
	sleep 0.1
done
after=$(pod_version)

step "what the pod sends to Bedrock after the reload (no restart)"
pod_filter

if [ "$after" = "$before" ]; then
	echo "the pod is still on version $before: the update did not arrive" >&2
	exit 1
fi
step "done: the pod moved from version $before to version $after"
