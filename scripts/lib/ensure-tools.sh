# Sourced by scripts/run.sh and scripts/test.sh: installs what a fresh machine lacks.
# Bun comes from npm (the only registry besides Debian's that these machines reach); test peers
# come from Debian's packages and need root.

BUN_VERSION=1.4.5

ensure_bun() {
  if command -v bun >/dev/null 2>&1 && [ "$(bun --version)" = "$BUN_VERSION" ]; then return; fi
  echo "==> installing bun $BUN_VERSION from npm"
  npm install --global --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
  hash -r
  # npm may skip bun's postinstall; the package still ships a working launcher. Check it runs.
  bun --version >/dev/null
}

# Debian packages for the end-to-end tests and the benchmark: the real registry, skopeo, slapd,
# the docker CLI (client only; it logs in without a daemon), wrk, the PostgreSQL and MariaDB
# servers for the SQL back-ends (test/sql/servers.ts runs its own instances), and qemu-user with
# the arm64 C library to run the linux-arm64 binary (test/e2e/arm64.e2e.test.ts, the image test),
# and prometheus for promtool (test/e2e/metrics.e2e.test.ts checks a real scrape).
TEST_PACKAGES=(docker-registry skopeo slapd ldap-utils wrk openssl postgresql mariadb-server qemu-user-static
  libc6-arm64-cross prometheus)
# chromium: the web interface's browser tests (test/e2e/web-ui.e2e.test.ts) drive Debian's
# chromium with playwright-core; no browser is ever downloaded.
TEST_PACKAGES+=(chromium)
# pebble: Let's Encrypt's test CA, for HTTPS from ACME (test/e2e/acme.e2e.test.ts runs its own).
TEST_PACKAGES+=(pebble)

ensure_test_peers() {
  local missing=()
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ -x /usr/sbin/mariadbd ] && [ -x /usr/bin/mariadb-install-db ] || missing+=(mariadb-server)
  command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # Fault tests (test/e2e/full-disk, frozen-disk): mount, fsfreeze and mkfs.ext4; they skip
  # themselves where mounting is not permitted.
  command -v fsfreeze >/dev/null 2>&1 || [ -x /usr/sbin/fsfreeze ] || missing+=(util-linux)
  command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v pebble >/dev/null 2>&1 || missing+=(pebble)
  if [ ${#missing[@]} -eq 0 ]; then return; fi
  if [ "$(id -u)" != 0 ]; then
    echo "missing test peers: ${missing[*]}; run as root (or apt-get install them) for the end-to-end tests" >&2
    return 1
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # --no-install-recommends keeps slapd/docker.io from pulling in services we do not want running.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts slapd on install; our tests run their own instances on loopback ports.
  # The same for PostgreSQL and MariaDB: the SQL tests start theirs on private ports and data dirs.
  # prometheus is installed for promtool only; its server must not run (nor hold port 9090).
  if command -v service >/dev/null 2>&1; then
    for unit in slapd postgresql mariadb prometheus; do service "$unit" stop >/dev/null 2>&1 || true; done
  fi
  pkill -x slapd 2>/dev/null || true
  pkill -x mariadbd 2>/dev/null || true
  pkill -x prometheus 2>/dev/null || true
  pkill -u postgres -x postgres 2>/dev/null || true
}
