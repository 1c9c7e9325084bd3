#!/usr/bin/env bash
# `npm test`'s pretest step: obtains what the tests need that npm cannot install. The tests run real servers and
# tools from Debian packages (Prometheus, promtool and amtool; Redis; Mosquitto; kubectl for the Kubernetes
# manifests; openssl for test certificates; git for the docs tests; Chromium, which playwright-core drives for the
# status page's browser test) and compare the manifests with Debian's own kubectl (kustomize v2), unpacked into
# .cache/. As root on a Debian machine this installs what is missing; otherwise it stops and prints the exact command
# to run. Servers are never started here: policy-rc.d keeps the packages' services down (the tests
# start their own on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have promtool && have prometheus || missing+=(prometheus)
have amtool || missing+=(prometheus-alertmanager)
have redis-server || missing+=(redis-server)
[ -x /usr/sbin/mosquitto ] || have mosquitto || missing+=(mosquitto)
have kubectl || missing+=(kubernetes-client)
have openssl || missing+=(openssl)
# The docs tests list the files git tracks (git ls-files, check-ignore): a bare machine's checkout copy may lack git.
have git || missing+=(git)
# At the path test/web/status-browser.test.ts launches: playwright-core downloads no browser of its own here.
[ -x /usr/bin/chromium ] || missing+=(chromium)

# Debian's kubectl (1.20, kustomize v2.0.3) is what a fresh machine gets; the manifests must render with it too.
debian_kubectl=.cache/debian-kubectl/usr/bin/kubectl

can_apt() { [ "$(id -u)" = 0 ] && have apt-get && have dpkg-deb; }

if [ "${#missing[@]}" -eq 0 ] && [ -x "$debian_kubectl" ]; then exit 0; fi

if ! can_apt; then
  echo "npm test needs these Debian packages, which it installs itself only when run as root:" >&2
  [ "${#missing[@]}" -gt 0 ] && echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  if [ ! -x "$debian_kubectl" ]; then
    echo "and Debian's kubectl unpacked into .cache/ (for the kustomize v2 comparison):" >&2
    echo "  (mkdir -p .cache && cd .cache && apt-get download kubernetes-client && dpkg-deb -x kubernetes-client_*.deb debian-kubectl)" >&2
  fi
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=0
update() {
  [ "$updated" = 1 ] && return
  echo "test-prereqs: apt-get update" >&2
  apt-get update -q >/dev/null
  updated=1
}

if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "test-prereqs: installing $pkgs" >&2
  update
  # Keep the packages' services from starting (and from taking the standard ports).
  cleanup_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    cleanup_policy=1
  fi
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $pkgs >/dev/null
  [ "$cleanup_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x "$debian_kubectl" ]; then
  echo "test-prereqs: unpacking Debian's kubectl into .cache/debian-kubectl" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download kubernetes-client >/dev/null 2>&1 || { update && apt-get download kubernetes-client >/dev/null; }; })
  mkdir -p .cache
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb .cache/debian-kubectl
  rm -rf "$tmp"
fi
