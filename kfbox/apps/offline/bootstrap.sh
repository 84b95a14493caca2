#!/bin/sh
# kfbox's offline bootstrap, written by `kfbox bundle` for one bundle. On a fresh
# @OS_NAME@ @ARCH@ machine with no network, as root:
#
#   tar -xf BUNDLE --occurrence bootstrap.sh && sh bootstrap.sh BUNDLE
#
# (--occurrence: tar stops at the first member, so even a damaged BUNDLE yields this script,
# which then says what is wrong with it)
#
# Before it uses anything it checks this machine (release, architecture, free disk), every
# member of BUNDLE against the bundle's SHA256SUMS (one pass, nothing written) and BUNDLE itself
# against BUNDLE.sha256 when that file is beside it. Then it installs the Debian packages Python
# needs, makes kfbox's virtual environment from the bundled wheels (no package index) and links
# `kfbox` into /usr/local/bin. Next: kfbox up --from-bundle BUNDLE. Any failure is one line and
# leaves nothing behind that this script made. Only POSIX sh, GNU tar and coreutils are used:
# nothing else is on a fresh machine.
set -eu

KFBOX_VERSION='@KFBOX_VERSION@'
OS_ID='@OS_ID@'
OS_VERSION='@OS_VERSION@'
OS_NAME='@OS_NAME@'
ARCH='@ARCH@'
BOOTSTRAP_DEBS='@BOOTSTRAP_DEBS@'
NEED_STAGE=@NEED_STAGE@
NEED_VENV=@NEED_VENV@
NEED_PACKAGES=@NEED_PACKAGES@
NEED_IMAGES=@NEED_IMAGES@

VENV=${KFBOX_VENV:-/opt/kfbox}
WORK=${TMPDIR:-/var/tmp}
DOCKER_ROOT=/var/lib/docker
LINK=/usr/local/bin/kfbox
STAGE=""
CREATED_VENV=""

say() { printf ' - %s\n' "$*" >&2; }
fail() { printf 'kfbox bootstrap: error: %s\n' "$*" >&2; exit 1; }
cleanup() {
  [ -z "$STAGE" ] || rm -rf "$STAGE"
  [ -z "$CREATED_VENV" ] || rm -rf "$CREATED_VENV"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $# -ne 1 ]; then
  echo "usage: sh bootstrap.sh BUNDLE (the .tar that kfbox bundle wrote)" >&2
  exit 2
fi
BUNDLE=$1
if [ ! -f "$BUNDLE" ]; then
  echo "kfbox bootstrap: error: no bundle at $BUNDLE — give the .tar that kfbox bundle wrote" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || fail "it installs Debian packages: run it as root (sudo sh $0 $BUNDLE)"

# ---- this machine -----------------------------------------------------------------------
HOST_ID=$(. /etc/os-release && echo "${ID:-}")
HOST_VERSION=$(. /etc/os-release && echo "${VERSION_ID:-}")
HOST_NAME=$(. /etc/os-release && echo "${PRETTY_NAME:-an unknown OS}")
HOST_ARCH=$(dpkg --print-architecture)
if [ "$HOST_ID" != "$OS_ID" ] || [ "$HOST_VERSION" != "$OS_VERSION" ]; then
  fail "the bundle is for $OS_NAME but this machine runs $HOST_NAME — make the bundle with \`kfbox bundle\` on a $HOST_NAME $HOST_ARCH machine"
fi
if [ "$HOST_ARCH" != "$ARCH" ]; then
  fail "the bundle is for $ARCH but this machine is $HOST_ARCH — make the bundle with \`kfbox bundle\` on a $HOST_NAME $HOST_ARCH machine"
fi

# ---- free disk: each need on the filesystem that will hold it ------------------------------
existing() { p=$1; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; echo "$p"; }
# Each line: path | bytes | what lands there | the variable that moves it elsewhere, if any.
needs() {
  for line in "$WORK|$NEED_STAGE|the unpacked wheels and packages (TMPDIR=$WORK)|TMPDIR" \
              "$VENV|$NEED_VENV|kfbox's virtual environment (KFBOX_VENV=$VENV)|KFBOX_VENV" \
              "/usr|$NEED_PACKAGES|the Debian packages|" \
              "$DOCKER_ROOT|$NEED_IMAGES|the images ($DOCKER_ROOT)|"; do
    path=${line%%|*}; rest=${line#*|}
    mount=$(df -Pk "$(existing "$path")" | awk 'NR == 2 { print $6 }')
    printf '%s|%s\n' "$mount" "$rest"
  done
}
short=$(needs | awk -F'|' '!($1 in need) { order[++n] = $1 }
  { need[$1] += $2; what[$1] = what[$1] (what[$1] ? ", " : "") $3
    if ($4 != "") move[$1] = move[$1] (move[$1] ? " or " : "") $4 }
  END { for (i = 1; i <= n; i++) { m = order[i]
        printf "%s|%.0f|%s|%s\n", m, need[m], what[m], move[m] } }' |
  while IFS='|' read -r mount bytes what move; do
    free=$(df -Pk "$mount" | awk 'NR == 2 { printf "%.0f\n", $4 * 1024 }')
    if [ "$bytes" -gt "$free" ]; then
      echo "not enough disk on $mount: the bundle needs $((bytes / 1000000)) MB there for $what, $((free / 1000000)) MB are free — free space there${move:+, or point $move at a larger disk}"
      break
    fi
  done)
[ -z "$short" ] || fail "$short"

# ---- every member, before anything is used --------------------------------------------------
STAGE=$(mktemp -d "$WORK/kfbox-bootstrap.XXXXXX")
tar -xf "$BUNDLE" -C "$STAGE" --occurrence SHA256SUMS 2>/dev/null ||
  fail "$BUNDLE has no SHA256SUMS: it is not a kfbox bundle, or it is damaged — copy it again"
say "checking every member of $BUNDLE"
# One pass, nothing written: tar hands each member to sha256sum.
if tar -xf "$BUNDLE" --to-command='printf "%s  %s\n" "$(sha256sum | cut -d" " -f1)" "$TAR_FILENAME"' \
    > "$STAGE/computed" 2> "$STAGE/tar.log"; then
  damaged=""
else
  damaged=$(tail -n 1 "$STAGE/tar.log")
fi
# SHA256SUMS lists the members in archive order: the first one found wrong is where a damaged
# copy went wrong.
problem=$(awk -v damaged="$damaged" 'NR == FNR { want[$2] = $1; order[++n] = $2; next }
  { got[$2] = $1; if (!($2 in want) && $2 != "SHA256SUMS" && $2 != "manifest.json") {
      print "member " $2 " is not in the bundle'"'"'s SHA256SUMS: the bundle was modified"; exit } }
  END { for (i = 1; i <= n; i++) { p = order[i]
        if (!(p in got)) {
          print "member " p (damaged ? " is truncated (the file ends early)" : " is missing"); exit }
        if (got[p] != want[p]) {
          print "member " p (damaged ? " is truncated (the file ends early)" : " is corrupt (sha256 differs)"); exit } } }' \
  "$STAGE/SHA256SUMS" "$STAGE/computed")
[ -z "$problem" ] || fail "$BUNDLE: $problem — copy the bundle again from where it was made"
[ -z "$damaged" ] || fail "$BUNDLE is damaged ($damaged) — copy the bundle again from where it was made"
if [ -f "$BUNDLE.sha256" ]; then
  expected=$(cut -d' ' -f1 "$BUNDLE.sha256")
  actual=$(sha256sum < "$BUNDLE" | cut -d' ' -f1)
  [ "$expected" = "$actual" ] ||
    fail "$BUNDLE does not match $BUNDLE.sha256 (sha256 $actual) — copy both files again"
else
  say "no $BUNDLE.sha256 beside it: checked its members only"
fi

# ---- Python, then kfbox -------------------------------------------------------------------
# shellcheck disable=SC2086  # the file list is ours: names without spaces
tar -xf "$BUNDLE" -C "$STAGE" install-debs.sh $BOOTSTRAP_DEBS --wildcards 'wheels/*'
(cd "$STAGE" && sha256sum --check --quiet --ignore-missing SHA256SUMS) ||
  fail "$BUNDLE changed while it was read — copy the bundle again"
mkdir -p "$STAGE/debs"
say "installing the Debian packages Python needs (those missing)"
sh "$STAGE/install-debs.sh" "$STAGE/debs" > "$STAGE/apt.log" 2>&1 ||
  fail "installing Python's packages failed: $(grep '^E:' "$STAGE/apt.log" | head -n 1)"
say "$(tail -n 1 "$STAGE/apt.log")"
if [ ! -x "$VENV/bin/python" ]; then
  CREATED_VENV=$VENV
  python3 -m venv "$VENV" > "$STAGE/venv.log" 2>&1 ||
    fail "python3 -m venv $VENV failed: $(tail -n 1 "$STAGE/venv.log")"
fi
say "installing kfbox $KFBOX_VERSION into $VENV from the bundled wheels (no package index)"
"$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
    --find-links "$STAGE/wheels" "kfbox==$KFBOX_VERSION" > "$STAGE/pip.log" 2>&1 ||
  fail "pip could not install kfbox from the bundled wheels: $(grep -m 1 '^ERROR' "$STAGE/pip.log")"
ln -sf "$VENV/bin/kfbox" "$LINK"
CREATED_VENV=""
say "kfbox $KFBOX_VERSION is installed: $LINK"
echo "next: kfbox up --from-bundle $BUNDLE && kfbox certify"
