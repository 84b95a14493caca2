#!/bin/sh
# Installs the .deb files in DIR whose packages are not installed yet, with no network: apt reads
# no package source (only these files and what dpkg has), so it has nothing it could fetch.
# Used by an offline bundle's bootstrap.sh (Python) and by the docker_engine role under
# `kfbox up --from-bundle` (the engine). Packages already installed, at any version, are left
# alone. The last line says what happened: "installed N packages: ..." or "nothing to install".
set -eu
[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: install-debs.sh DIR (a folder of .deb files)" >&2; exit 2; }
dir=$1
shift
names=""
for deb in "$dir"/*.deb; do
  [ -e "$deb" ] || continue
  package=$(dpkg-deb --field "$deb" Package)
  state=$(dpkg-query --show --showformat='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [ "$state" != installed ]; then
    set -- "$@" "$deb"
    names="$names $package"
  fi
done
if [ $# -eq 0 ]; then
  echo "nothing to install"
  exit 0
fi
# Not --no-download: apt 2.6 rejects a local file of a package with an epoch (dmsetup) with it;
# with no source list there is nowhere to download from anyway.
DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends \
  -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null \
  -o APT::Sandbox::User=root "$@"
echo "installed $# packages:$names"
