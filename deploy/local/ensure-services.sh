#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust) and RabbitMQ (127.0.0.1:5672, guest) answer:
# starts them when installed but stopped, installs them from the OS packages when missing and running
# as root, otherwise stops with a message saying what to do.
set -euo pipefail

say() { printf '\033[1m[ensure-services]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[ensure-services]\033[0m %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, check command, seconds
  local name=$1 check=$2 seconds=$3
  for _ in $(seq 1 "$seconds"); do
    if eval "$check"; then return 0; fi
    sleep 1
  done
  die "$name did not become ready within ${seconds}s"
}

apt_install() {
  is_root || die "$1 is not installed. Install it (e.g. 'sudo apt-get install -y $*') and run again."
  say "installing $* from the OS packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
pg_trust_ok() { psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
  if pg_ready && pg_trust_ok; then say "PostgreSQL is up"; return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_trust_ok; then
    # A fresh OS install asks for passwords on TCP; this development setup uses trust on loopback.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if is_root && [ -w "$hba" ] && ! grep -q "oneclass-dev" "$hba"; then
      say "allowing trust auth on loopback for local development ($hba)"
      sed -i '1i host all all 127.0.0.1/32 trust # oneclass-dev\nhost all all ::1/128 trust # oneclass-dev' "$hba"
    fi
  fi
  if ! pg_ready; then
    say "starting PostgreSQL $version"
    if is_root; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    else
      die "PostgreSQL is stopped. Start it: sudo pg_ctlcluster $version main start"
    fi
  else
    is_root && pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  fi
  wait_for PostgreSQL "pg_ready && pg_trust_ok" 60
  say "PostgreSQL is up"
}

rabbit_ready() { port_open 5672 && rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }

ensure_rabbitmq() {
  if port_open 5672; then say "RabbitMQ is up"; return; fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  is_root || die "RabbitMQ is stopped. Start it: sudo rabbitmq-server -detached"
  # The node inherits a 1,024 soft file limit; every quorum queue and connection needs descriptors.
  local env_conf=/etc/rabbitmq/rabbitmq-env.conf
  if [ -d /etc/rabbitmq ] && ! grep -q "ulimit -S -n" "$env_conf" 2>/dev/null; then
    echo 'ulimit -S -n 20000 2>/dev/null || true' >> "$env_conf"
  fi
  say "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for RabbitMQ "port_open 5672 && rabbitmqctl -q await_startup >/dev/null 2>&1" 120
  say "RabbitMQ is up"
}

ensure_postgres
ensure_rabbitmq
