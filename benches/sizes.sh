#!/usr/bin/env bash
# What people download: the release binary's size, and the container image's (deploy/Dockerfile).
#   bash benches/sizes.sh
# With a Docker daemon the image is built and `docker image inspect` gives its size. Without one
# (the project's build machine has none), the image's root file system is made the way the
# Dockerfile makes it — Debian bookworm minbase (debootstrap) with what the -slim images leave
# out, ca-certificates, the tagwall user, the binary and the example settings — and measured
# with du (uncompressed, what `docker images` shows) and gzip (about what a registry transfers).
# Needs root for debootstrap and chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin tagwall >/dev/null
bin=target/release/tagwall
printf 'binary            %s bytes (gzip: %s)\n' "$(stat -c %s "$bin")" "$(gzip -6 -c "$bin" | wc -c)"

if docker info >/dev/null 2>&1; then
  docker build -q -f deploy/Dockerfile -t tagwall:sizes . >/dev/null
  printf 'image             %s bytes (docker image inspect)\n' \
    "$(docker image inspect tagwall:sizes --format '{{.Size}}')"
  exit 0
fi

command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /bin/sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null \
  && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home-dir /var/lib/tagwall --create-home tagwall' 2>/dev/null
# What Debian's -slim images remove (debuerreotype-slimify).
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff \
  "$root"/usr/share/lintian "$root"/usr/share/linda "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
base=$(du -sb "$root" | cut -f1)
install -m 0755 "$bin" "$root/usr/local/bin/tagwall"
mkdir -p "$root/etc/tagwall" && cp deploy/tagwall.example.toml "$root/etc/tagwall/tagwall.toml"
size=$(du -sb "$root" | cut -f1)
packed=$(tar --numeric-owner -C "$root" -cf - --exclude=./proc --exclude=./sys --exclude=./dev . | gzip -6 | wc -c)
printf 'image base        %s bytes (bookworm-slim equivalent + ca-certificates)\n' "$base"
printf 'image             %s bytes uncompressed, %s gzip (equivalent root file system, no Docker daemon)\n' "$size" "$packed"
