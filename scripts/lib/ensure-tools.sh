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
# the docker CLI (client only; it logs in without a daemon) and wrk.
TEST_PACKAGES=(docker-registry skopeo slapd ldap-utils wrk openssl)

ensure_test_peers() {
  local missing=()
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  # Fault tests (test/e2e/full-disk, frozen-disk): mount, fsfreeze and mkfs.ext4; they skip
  # themselves where mounting is not permitted.
  command -v fsfreeze >/dev/null 2>&1 || [ -x /usr/sbin/fsfreeze ] || missing+=(util-linux)
  command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
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
  if command -v service >/dev/null 2>&1; then service slapd stop >/dev/null 2>&1 || true; fi
  pkill -x slapd 2>/dev/null || true
}
