#!/bin/sh
# Installs this gridmesh agent bundle (device @DEVICE@, @ARCH@) without network access.
#
#   sh install.sh [--prefix DIR] [--system] [--python PYTHON]
#
# Checks every file against manifest.json, installs the wheelhouse into a virtualenv in
# a new folder PREFIX/versions/VERSION and only then points PREFIX/current at it, so a
# failed or interrupted install leaves the running version as it was; run it again to
# finish. With --system (as root) it also creates the service user, the state folder
# @STATE_DIR@ and the systemd unit, enables it and (re)starts the agent.
set -eu

PREFIX=/opt/gridmesh
SYSTEM=0
PYTHON=python3
SERVICE=@UNIT_NAME@
SERVICE_USER=@USER@
STATE_DIR=@STATE_DIR@

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || fail "--prefix needs a folder"; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#--prefix=}; shift ;;
        --python) [ $# -ge 2 ] || fail "--python needs a program"; PYTHON=$2; shift 2 ;;
        --system) SYSTEM=1; shift ;;
        -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(uname -m)" = "@ARCH@" ] || fail "this bundle is for @ARCH@; this machine is $(uname -m)"
command -v "$PYTHON" >/dev/null 2>&1 || fail "$PYTHON not found: the agent needs CPython @PYTHON_VERSION@"
have=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$have" = "@PYTHON_VERSION@" ] || fail "the wheels are for CPython @PYTHON_VERSION@; $PYTHON is $have"
version=$("$PYTHON" "$HERE/check_manifest.py" "$HERE") || fail "the bundle is damaged; nothing was installed"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || fail "$PYTHON has no venv module (apt install python3-venv)"
if [ "$SYSTEM" = 1 ] && [ "$(id -u)" != 0 ]; then
    fail "--system needs root (sudo sh install.sh --system)"
fi

target=$PREFIX/versions/$version
mkdir -p "$PREFIX/versions"
if [ -f "$target/.installed" ]; then
    echo "gridmesh $version is installed already in $target"
else
    rm -rf "$target"  # what an interrupted install left
    trap 'rm -rf "$target"' EXIT
    trap 'exit 1' INT TERM HUP
    mkdir "$target"
    "$PYTHON" -m venv "$target/venv"
    "$target/venv/bin/python" -m pip --isolated --disable-pip-version-check install --quiet \
        --no-index --find-links "$HERE/wheelhouse" "$HERE/wheelhouse/@GRIDMESH_WHEEL@"
    cp -R "$HERE/config" "$target/config"
    chmod 0700 "$target/config/keys"
    chmod 0600 "$target/config/keys/@DEVICE@.key"
    sed "s|@PREFIX@|$PREFIX|g" "$HERE/systemd/$SERVICE" > "$target/$SERVICE"
    cp "$HERE/manifest.json" "$target/manifest.json"
    # the installed code must accept the installed configuration
    "$target/venv/bin/python" -I -c 'import sys
from pathlib import Path
from edge.config import load_agent_config
load_agent_config(Path(sys.argv[1]))' "$target/config/agent.yaml"
    touch "$target/.installed"
    trap - EXIT INT TERM HUP
    echo "gridmesh $version installed in $target"
fi

if [ "$SYSTEM" = 1 ]; then
    id -u "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --no-create-home \
        --home-dir "$STATE_DIR" --shell /usr/sbin/nologin "$SERVICE_USER"
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0700 "$STATE_DIR"
    chgrp -R "$SERVICE_USER" "$target/config"  # the agent reads its key and credentials
    chmod -R u=rwX,g=rX,o= "$target/config"
fi

previous=$(readlink "$PREFIX/current" 2>/dev/null || true)
ln -sfn "versions/$version" "$PREFIX/.current.new"
mv -Tf "$PREFIX/.current.new" "$PREFIX/current"  # rename(2): the switch is atomic
echo "$PREFIX/current -> versions/$version"
for old in "$PREFIX"/versions/*; do  # keep this version and the one before (to roll back)
    name=${old##*/}
    [ "$name" = "$version" ] || [ "versions/$name" = "$previous" ] || [ ! -e "$old" ] || rm -rf "$old"
done

if [ "$SYSTEM" = 1 ]; then
    install -m 0644 "$PREFIX/current/$SERVICE" "/etc/systemd/system/$SERVICE"
    systemctl daemon-reload
    systemctl enable "$SERVICE" >/dev/null 2>&1
    systemctl restart "$SERVICE"
    echo "$SERVICE enabled and (re)started"
fi
