#!/usr/bin/env bash
# Builds the container image from the unmodified Dockerfile with podman (no Docker engine needed),
# runs the emulator and the exporter from it (the compose demo: config/demo.yaml, every job type),
# and checks what the image promises: every demo job succeeding against the emulator, a passing
# HEALTHCHECK, a non-root process, exit 0 on SIGTERM within the grace period, no container left; then the compose ha
# profile's two replicas (config/compose/ha.yaml) sharing the jobs through Redis — Debian's redis-server run in the
# containers' network namespace, as no Redis image can be pulled here. Needs root (rootful podman). The base image cannot be pulled here, so a substitute is
# built once and cached (test/container/build-substitute-base.sh; what it proves: docs/container.md).
#
# Environment: REBUILD_BASE=1 rebuilds the substitute base; STORAGE_DRIVER=overlay|vfs (default:
# overlay if it works); GRACE_SECONDS (default 10, as Docker and compose); KEEP=1 leaves the
# containers running for a look; `verify.sh --clean` deletes the image store and the cached base.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

image=localhost/cloud-session-exporter:verify
grace=${GRACE_SECONDS:-10}
state_dir=/var/tmp/cloud-session-exporter-container
secret=demo-secret-change-me
started=$SECONDS
failures=0

log() { printf '[verify %3ds] %s\n' $((SECONDS - started)) "$*" >&2; }
pass() { log "PASS $*"; }
fail() { log "FAIL $*"; failures=$((failures + 1)); }
die() { log "ERROR $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root: rootful podman with chroot isolation and the runc runtime"

# --- tools ---------------------------------------------------------------------------------------
missing=()
for tool in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" \
    conmon containernetworking-plugins netavark aardvark-dns catatonit >/dev/null 2>&1 \
    || apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
fi

# A store of our own: no clash with other podman users on the machine, and --clean removes it whole.
pick_driver() {
  [[ -n ${STORAGE_DRIVER:-} ]] && { echo "$STORAGE_DRIVER"; return; }
  if podman --root "$state_dir/probe-overlay" --runroot /run/cloud-session-exporter-probe \
       --storage-driver overlay info >/dev/null 2>&1; then echo overlay; else echo vfs; fi
  rm -rf "$state_dir/probe-overlay" /run/cloud-session-exporter-probe
}
mkdir -p "$state_dir"
driver=$(pick_driver)
podman_opts=(--root "$state_dir/storage-$driver" --runroot "/run/cloud-session-exporter-containers-$driver"
  --storage-driver "$driver" --runtime runc --cgroup-manager cgroupfs --events-backend file)
pm() { podman "${podman_opts[@]}" "$@"; }
# This machine's default limits exceed what runc may set in its sandbox: give them explicitly.
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

if [[ ${1:-} == --clean ]]; then
  for store in "$state_dir"/storage-*; do
    [[ -d $store ]] || continue
    d=${store##*/storage-}
    podman --root "$store" --runroot "/run/cloud-session-exporter-containers-$d" --storage-driver "$d" \
      system reset --force >/dev/null 2>&1 || true
    rm -rf "/run/cloud-session-exporter-containers-$d"
  done
  rm -rf "$state_dir"
  log "removed $state_dir"
  exit 0
fi

[[ -f src/main.ts ]] || die "src/main.ts does not exist yet: nothing to verify (the exporter's entry point dist/src/main.js is built from it)"
[[ -f emulator/main.ts ]] || die "emulator/main.ts does not exist yet (the emulator runs from the same image)"

# --- substitute base -----------------------------------------------------------------------------
mapfile -t bases < <(sed -nE 's/^FROM[[:space:]]+([^[:space:]]+).*/\1/p' Dockerfile | sort -u)
((${#bases[@]} == 1)) || die "expected one base image in the Dockerfile, found: ${bases[*]}"
base=${bases[0]}
[[ $base == */* ]] || base=docker.io/library/$base
# Rebuilt when the recipe changes; an image of that name that is not our substitute (a real pull) is used as is.
recipe=$(sha256sum test/container/build-substitute-base.sh | cut -c1-16)
base_recipe() { pm image inspect --format '{{index .Labels "io.github.cloud-session-exporter.substitute-base.recipe"}}' "$base" 2>/dev/null; }
base_is_substitute() { [[ $(pm image inspect --format '{{index .Labels "io.github.cloud-session-exporter.substitute-base"}}' "$base" 2>/dev/null) == true ]]; }
if [[ ${REBUILD_BASE:-0} == 1 ]] || ! pm image exists "$base" || { base_is_substitute && [[ $(base_recipe) != "$recipe" ]]; }; then
  log "building substitute base $base"
  PODMAN_OPTS="${podman_opts[*]}" SUBSTITUTE_BASE_WORKDIR="$state_dir/substitute-base" SUBSTITUTE_BASE_RECIPE="$recipe" \
    bash test/container/build-substitute-base.sh "$base"
else
  log "reusing base $base ($(pm image inspect --format 'substitute: {{index .Labels "io.github.cloud-session-exporter.substitute-base"}}, node {{index .Labels "io.github.cloud-session-exporter.substitute-base.node"}}, npm {{index .Labels "io.github.cloud-session-exporter.substitute-base.npm"}}' "$base" 2>/dev/null || true))"
fi

# --- build ---------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/cloud-session-exporter-verify.XXXXXX)
emulator=cse-verify-emulator-$$
exporter=cse-verify-exporter-$$
replica1=cse-verify-ha-1-$$
replica2=cse-verify-ha-2-$$
redis_pid=
cleanup() {
  local rc=$?
  if [[ ${KEEP:-0} == 1 ]]; then
    log "KEEP=1: containers $emulator $exporter $replica1 $replica2 left running; logs in $work"
  else
    # One name per call: podman 4.3's `rm` given a name that no longer exists removes none of the others.
    for c in "$replica2" "$replica1" "$exporter" "$emulator"; do pm rm --force --time 0 "$c" >/dev/null 2>&1 || true; done
    [[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null || true
    rm -rf "$work"
    local left
    left=$(pm ps --all --format '{{.Names}}' 2>/dev/null | grep -xF -e "$exporter" -e "$emulator" -e "$replica1" -e "$replica2" || true)
    if [[ -n $left ]]; then
      log "FAIL containers left behind: $(tr '\n' ' ' <<<"$left")"
      rc=1
    else
      log "no container left behind"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
log "building $image from the Dockerfile (log: $work/build.log)"
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
if ! pm build --pull=never --isolation chroot --network host --format docker "${ulimits[@]}" \
     --build-arg "REVISION=$revision" --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
     -f Dockerfile -t "$image" . >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  die "image build failed"
fi
pass "image builds from the unmodified Dockerfile ($(pm image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"

# --- static checks of the image ------------------------------------------------------------------
inspect() { pm image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
[[ -n $user && ${user%%:*} != root && ${user%%:*} != 0 ]] && pass "image USER is $user" || fail "image USER is '${user}' (want non-root)"
[[ $(inspect '{{json .Config.Entrypoint}}') == '["/usr/bin/tini","--"]' ]] && pass "tini is the entrypoint" \
  || fail "entrypoint is $(inspect '{{json .Config.Entrypoint}}')"
cmd=$(inspect '{{json .Config.Cmd}}')
[[ $cmd == '["node",'* ]] && pass "CMD runs node directly: $cmd" || fail "CMD is $cmd"
[[ $(inspect '{{json .Config.ExposedPorts}}') == *'"10780/tcp"'* ]] && pass "EXPOSE 10780" || fail "10780 not exposed"
[[ $(inspect '{{json .Config.Healthcheck}}') == *'/-/healthy'* ]] && pass "HEALTHCHECK probes /-/healthy" || fail "no HEALTHCHECK on /-/healthy"
for label in title description licenses version revision created; do
  [[ -n $(inspect "{{index .Labels \"org.opencontainers.image.$label\"}}") ]] || fail "OCI label org.opencontainers.image.$label missing"
done
pass "OCI labels present"
if pm run --rm "${ulimits[@]}" --network none --no-healthcheck --entrypoint sh "$image" -c \
     'test -f dist/src/main.js && test -f dist/emulator/main.js && test ! -e node_modules/typescript && test ! -e node_modules/vitest && test ! -e src'; then
  pass "runtime stage has dist/src, no dev dependencies, no sources"
else
  fail "runtime stage contents (dist/src/main.js, dist/emulator/main.js present; typescript, vitest, src absent)"
fi

# --- run: emulator and exporter share one private network namespace (no host ports used) ----------
printf '127.0.0.1 localhost emulator\n::1 localhost ip6-localhost\n' >"$work/hosts"
chmod 0644 "$work/hosts"
log "starting the emulator (scenario config/scenarios/demo.yaml) from the image"
pm run -d --name "$emulator" "${ulimits[@]}" --network none --no-healthcheck --read-only --cap-drop ALL \
  --security-opt no-new-privileges "$image" \
  node dist/emulator/main.js --scenario config/scenarios/demo.yaml --listen 127.0.0.1:18080 >/dev/null
# exitCode, not exit(): exit() would cut off a large body still being written to the pipe.
fetch_js='fetch(process.argv[1]).then(async r=>{process.stdout.write(await r.text());process.exitCode=r.ok?0:1},e=>{console.error(String(e.cause||e));process.exitCode=2})'
for _ in $(seq 1 60); do
  pm exec "$emulator" node -e "$fetch_js" http://127.0.0.1:18080/_emulator/stats >/dev/null 2>&1 && break
  [[ $(pm inspect --format '{{.State.Running}}' "$emulator") == true ]] || break
  sleep 0.5
done
pm exec "$emulator" node -e "$fetch_js" http://127.0.0.1:18080/_emulator/stats >/dev/null 2>&1 \
  || { pm logs "$emulator" >&2; die "the emulator did not answer on 127.0.0.1:18080"; }
pass "emulator answers (demo scenario)"

# The two exporter services of docker-compose.yml, with its mounts and environment (test/container/compose.test.ts
# checks that file; these lines repeat what it says).
demo_env=(-e ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI-demo-access-key -e ALIBABA_CLOUD_ACCESS_KEY_SECRET="$secret"
  -e TENCENTCLOUD_SECRET_ID=AKID-demo-secret-id -e TENCENTCLOUD_SECRET_KEY=demo-tencent-key
  -e DEMO_EMULATOR_URL=http://emulator:18080 -e DEMO_BROKER_URL=mqtt://emulator:18883)
demo_mounts=(-v "$root/config/demo.yaml:/etc/cloud-session-exporter/config.yaml:ro"
  -v "$root/config/demo:/etc/cloud-session-exporter/demo:ro")
cloud_mounts=(-v "$root/config/compose/exporter.yaml:/etc/cloud-session-exporter/config.yaml:ro"
  -v "$root/config/compose/devices.txt:/etc/cloud-session-exporter/devices.txt:ro")

# Both configs, checked by the exporter's own loader inside the image. Usage: check_config NAME MOUNT-OPTIONS...
check_config() {
  local name=$1; shift
  if pm run --rm "${ulimits[@]}" --network none --no-healthcheck "${demo_env[@]}" "$@" \
       "$image" node dist/src/main.js --config.check --config.file=/etc/cloud-session-exporter/config.yaml >"$work/check-${name##*/}.txt" 2>&1; then
    pass "$name passes --config.check in the image"
  else
    fail "$name fails --config.check: $(head -n 5 "$work/check-${name##*/}.txt")"
  fi
}
check_config config/demo.yaml "${demo_mounts[@]}"
check_config config/compose/exporter.yaml "${cloud_mounts[@]}"
demo_jobs=$(sed -nE 's/.*configuration is valid \([0-9]+ account\(s\), ([0-9]+) job\(s\)\).*/\1/p' "$work/check-demo.yaml.txt")

# The compose demo, verbatim: `emulator` resolves through the hosts file, as in compose's network.
log "starting the exporter with config/demo.yaml ($demo_jobs jobs) and the image's default CMD"
pm run -d --name "$exporter" "${ulimits[@]}" --network "container:$emulator" \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$work/hosts:/etc/hosts:ro" "${demo_mounts[@]}" \
  "${demo_env[@]}" "$image" >/dev/null 2>>"$work/podman.log"   # (podman warns that no systemd timer runs the healthcheck)

scrape() { pm exec "$exporter" node -e "$fetch_js" "http://127.0.0.1:10780$1"; }
succeeded() { grep -cE '^cloud_session_exporter_job_success\{.*\} 1$' "$work/metrics.txt" || true; }

metrics_ok=0
for _ in $(seq 1 90); do   # the first poll runs at start-up; allow for a slow first schedule tick
  [[ $(pm inspect --format '{{.State.Running}}' "$exporter") == true ]] || break
  if scrape /metrics >"$work/metrics.txt" 2>/dev/null && [[ -n $demo_jobs && $(succeeded) == "$demo_jobs" ]]; then
    metrics_ok=1; break
  fi
  sleep 1
done
if ((metrics_ok)); then
  pass "all $demo_jobs demo jobs succeed against the emulator: $(sed -nE 's/^cloud_session_exporter_job_success\{job_name="([^"]+)"\} 1$/\1/p' "$work/metrics.txt" | tr '\n' ' ')"
else
  fail "$(succeeded) of ${demo_jobs:-?} demo jobs succeed (exporter running: $(pm inspect --format '{{.State.Running}}' "$exporter"))"
  grep '^cloud_session_exporter_job_success' "$work/metrics.txt" >&2 || true
  pm logs "$exporter" 2>&1 | tail -n 30 >&2
fi
# One family of each job type, so every dashboard of the compose stack has data.
for family in aliyun_mqtt_client_online aliyun_mqtt_probe_success tencentcloud_mongodb_connections aliyun_redis_sessions; do
  n=$(grep -c "^$family{" "$work/metrics.txt" || true)
  ((n > 0)) && pass "/metrics has $n $family series" || fail "/metrics has no $family series"
done
if [[ $revision != unknown ]]; then
  grep -q "^cloud_session_exporter_build_info{.*revision=\"$revision\"" "$work/metrics.txt" \
    && pass "build_info carries the built revision" || fail "build_info does not carry revision $revision"
fi
scrape /-/ready >/dev/null 2>&1 && pass "/-/ready answers 200" || fail "/-/ready did not answer 200"

if pm healthcheck run "$exporter" >"$work/health.txt" 2>&1; then
  pass "HEALTHCHECK passes (podman healthcheck run)"
else
  fail "HEALTHCHECK fails: $(cat "$work/health.txt")"
fi
# ... and the same command fails where nothing listens, so the pass above means something.
health_js=$(inspect '{{json .Config.Healthcheck.Test}}' | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const t=JSON.parse(s);process.stdout.write(t[t.length-1])})')
if pm run --rm "${ulimits[@]}" --network none --no-healthcheck "$image" node -e "$health_js" >/dev/null 2>&1; then
  fail "the HEALTHCHECK command passes with no exporter running"
else
  pass "the HEALTHCHECK command fails when no exporter listens"
fi

# Every process in the container, tini and node included, runs as a non-root uid.
uids=$(pm top "$exporter" user args 2>/dev/null | tail -n +2 || true)
if [[ -n $uids ]] && ! awk '{print $1}' <<<"$uids" | grep -qxE '0|root'; then
  pass "processes run as non-root: $(awk '{printf "%s(%s) ", $2, $1}' <<<"$uids")"
else
  fail "a process runs as root, or none was listed: ${uids:-<none>}"
fi

# --- stop ----------------------------------------------------------------------------------------
log "stopping the exporter with SIGTERM (grace ${grace}s)"
t0=$(date +%s.%N)
pm stop --time "$grace" "$exporter" >/dev/null 2>>"$work/podman.log"
elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
code=$(pm inspect --format '{{.State.ExitCode}}' "$exporter")
pm logs "$exporter" >"$work/exporter.log" 2>&1 || true
if [[ $code == 0 ]] && awk -v e="$elapsed" -v g="$grace" 'BEGIN{exit !(e < g)}'; then
  pass "exit 0 on SIGTERM after ${elapsed}s (grace ${grace}s)"
else
  fail "on SIGTERM: exit code $code after ${elapsed}s (want 0 within ${grace}s)"
  tail -n 20 "$work/exporter.log" >&2
fi
if grep -q -- "$secret" "$work/exporter.log" "$work/metrics.txt" 2>/dev/null; then
  fail "the access key secret appears in the exporter's logs or metrics"
else
  pass "the secret appears in neither logs nor metrics"
fi

# --- the ha profile: two replicas, one Redis ------------------------------------------------------
# docker-compose.yml's exporter-ha-1/-2 with their mounts and environment (compose.test.ts checks that file): both
# replicas share the emulator's network namespace here, so the second listens on :10781 instead of its own :10780,
# and `redis` resolves to the redis-server started in that namespace.
if command -v redis-server >/dev/null && command -v nsenter >/dev/null; then
  printf '127.0.0.1 localhost emulator redis\n::1 localhost ip6-localhost\n' >"$work/hosts"
  netns=/proc/$(pm inspect --format '{{.State.Pid}}' "$emulator")/ns/net
  nsenter --net="$netns" redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  ha_mounts=(-v "$root/config/compose/ha.yaml:/etc/cloud-session-exporter/config.yaml:ro"
    -v "$root/config/demo:/etc/cloud-session-exporter/demo:ro" -v "$work/hosts:/etc/hosts:ro")
  check_config config/compose/ha.yaml "${ha_mounts[@]}" -e HOSTNAME=exporter-ha-1
  for n in 1 2; do
    name=$replica1; [[ $n == 2 ]] && name=$replica2
    listen=(); [[ $n == 2 ]] && listen=(node dist/src/main.js --config.file=/etc/cloud-session-exporter/config.yaml --web.listen-address=:10781)
    pm run -d --name "$name" "${ulimits[@]}" --network "container:$emulator" --read-only --cap-drop ALL \
      --security-opt no-new-privileges "${ha_mounts[@]}" "${demo_env[@]}" -e "HOSTNAME=exporter-ha-$n" \
      "$image" "${listen[@]}" >/dev/null 2>>"$work/podman.log"
  done
  ha_scrape() { pm exec "$replica1" node -e "$fetch_js" "http://127.0.0.1:$1/metrics"; }
  ha_ok=0
  for _ in $(seq 1 90); do
    if ha_scrape 10780 >"$work/ha-1.txt" 2>/dev/null && ha_scrape 10781 >"$work/ha-2.txt" 2>/dev/null; then
      leaders=$(cat "$work/ha-1.txt" "$work/ha-2.txt" | grep -cE '^cloud_session_exporter_cluster_leader\{.*\} 1$' || true)
      served=$(grep -c '^aliyun_mqtt_client_online{' "$work/ha-2.txt" || true)
      if [[ $leaders == 3 && $served -gt 0 && $(grep -c '^aliyun_mqtt_client_online{' "$work/ha-1.txt" || true) == "$served" ]]; then ha_ok=1; break; fi
    fi
    sleep 1
  done
  if ((ha_ok)); then
    pass "ha: one leader for each of the 3 jobs, both replicas serve the fleet's $served devices"
  else
    fail "ha: leaders ${leaders:-?} of 3 jobs, devices served: $(grep -c '^aliyun_mqtt_client_online{' "$work/ha-1.txt" 2>/dev/null || echo 0) / ${served:-0}"
    pm logs "$replica1" 2>&1 | tail -n 20 >&2
  fi
  # One poller per job: a job's calls come from its leader only.
  for job_api in 'fleet-hangzhou BatchQuerySessionByClientIds' 'mongodb DescribeClientConnections'; do
    read -r job api <<<"$job_api"
    callers=0
    for f in "$work/ha-1.txt" "$work/ha-2.txt"; do
      grep -qE "^cloud_session_exporter_api_requests_total\{account=\"[^\"]+\",api=\"$api\",code=\"OK\"\} [1-9]" "$f" && callers=$((callers + 1))
    done
    ((callers == 1)) && pass "ha: $api ($job) called by one replica only" || fail "ha: $api called by $callers replicas"
  done
  for name in "$replica1" "$replica2"; do
    t0=$(date +%s.%N)
    pm stop --time "$grace" "$name" >/dev/null 2>>"$work/podman.log"
    elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    code=$(pm inspect --format '{{.State.ExitCode}}' "$name")
    [[ $code == 0 ]] && pass "ha: $name exits 0 on SIGTERM after ${elapsed}s" || fail "ha: $name exit code $code after ${elapsed}s"
  done
  kill "$redis_pid" 2>/dev/null || true
  redis_pid=
else
  fail "ha: redis-server (Debian package redis-server) or nsenter missing"
fi

log "done in $((SECONDS - started))s: $failures failure(s)"
((failures == 0))
