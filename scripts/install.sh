#!/usr/bin/env bash
# Installs regauth: the binary, a commented sample config and the systemd unit (docs/deployment.md).
#
#   sudo bash scripts/install.sh                      # into /, binary in /usr/local/bin
#   DESTDIR=/tmp/root bash scripts/install.sh         # into a staging root (packaging, tests)
#   sudo bash scripts/install.sh --uninstall          # remove binary and unit; keep config and data
#   sudo bash scripts/install.sh --uninstall --purge  # also delete /etc/regauth and the data
#
# Environment: DESTDIR (staging root, default none), PREFIX (default /usr/local), REGAUTH_BINARY
# (the executable to install, default dist/regauth, built with `bun run build` when missing).
# Running it again is harmless: files are replaced by the same content, and an existing
# /etc/regauth/config.yml is never overwritten. It never starts the service.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

mode=install
purge=false
for arg in "$@"; do
  case "$arg" in
    --uninstall) mode=uninstall ;;
    --purge) purge=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "install.sh: unknown option $arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done
if [ "$purge" = true ] && [ "$mode" != uninstall ]; then
  echo "install.sh: --purge goes with --uninstall" >&2
  exit 2
fi

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
BIN_PATH="$PREFIX/bin/regauth"
SAMPLE_PATH="$PREFIX/share/regauth/config.sample.yml"
CONFIG_DIR=/etc/regauth
UNIT_PATH=/etc/systemd/system/regauth.service
# StateDirectory=regauth with DynamicUser=yes: the data lives in /var/lib/private/regauth,
# reached through the symlink /var/lib/regauth (systemd.exec(5)).
DATA_PATHS=(/var/lib/regauth /var/lib/private/regauth)

# systemctl only for the live system, never for a staging root.
manage_systemd=false
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  manage_systemd=true
fi

if [ "$mode" = uninstall ]; then
  if [ "$manage_systemd" = true ]; then systemctl disable --now regauth.service 2>/dev/null || true; fi
  rm -f "$DESTDIR$BIN_PATH" "$DESTDIR$UNIT_PATH" "$DESTDIR$SAMPLE_PATH"
  rmdir "$DESTDIR$PREFIX/share/regauth" 2>/dev/null || true
  if [ "$manage_systemd" = true ]; then systemctl daemon-reload; fi
  if [ "$purge" = true ]; then
    rm -rf "$DESTDIR$CONFIG_DIR"
    for path in "${DATA_PATHS[@]}"; do rm -rf "$DESTDIR$path"; done
    echo "removed regauth, its config and its data (accounts, signing key)"
  else
    echo "removed regauth; kept $CONFIG_DIR and ${DATA_PATHS[0]} (delete them with --uninstall --purge)"
  fi
  exit 0
fi

binary="${REGAUTH_BINARY:-dist/regauth}"
if [ ! -x "$binary" ]; then
  if [ -n "${REGAUTH_BINARY:-}" ]; then
    echo "install.sh: $binary is not an executable" >&2
    exit 1
  fi
  source scripts/lib/ensure-tools.sh
  ensure_bun
  bun install --frozen-lockfile >/dev/null
  bun run build >/dev/null
fi

install -d -m 0755 "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/regauth" "$DESTDIR/etc/systemd/system"
# Copy, then rename: replacing a running binary in place fails (ETXTBSY) or corrupts it.
install -m 0755 "$binary" "$DESTDIR$BIN_PATH.new"
mv -f "$DESTDIR$BIN_PATH.new" "$DESTDIR$BIN_PATH"
install -m 0644 docs/config.sample.yml "$DESTDIR$SAMPLE_PATH"
# The unit names /usr/local/bin/regauth; follow PREFIX.
sed "s|/usr/local/bin/regauth|$BIN_PATH|g" systemd/regauth.service >"$DESTDIR$UNIT_PATH.new"
chmod 0644 "$DESTDIR$UNIT_PATH.new"
mv -f "$DESTDIR$UNIT_PATH.new" "$DESTDIR$UNIT_PATH"
# 0755/0644: the service's dynamic user is not known in advance and must read the config
# (docs/deployment.md, "Secrets", for keeping it private with LoadCredential=).
install -d -m 0755 "$DESTDIR$CONFIG_DIR"
if [ ! -e "$DESTDIR$CONFIG_DIR/config.yml" ]; then
  install -m 0644 docs/config.sample.yml "$DESTDIR$CONFIG_DIR/config.yml"
  config_note="wrote $CONFIG_DIR/config.yml from the sample"
else
  config_note="kept $CONFIG_DIR/config.yml (the current sample is $SAMPLE_PATH)"
fi
if [ "$manage_systemd" = true ]; then systemctl daemon-reload; fi

cat <<EOF
installed $BIN_PATH, $UNIT_PATH; $config_note
next: $BIN_PATH check-config $CONFIG_DIR/config.yml && systemctl enable --now regauth
      journalctl -u regauth   # the admin password (once) and the registry's auth block
EOF
