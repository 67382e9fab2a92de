# Start the databases the tests need where the machine does not already run them (Debian packages).
# Sourced by scripts/test.sh; exports HOTLINE_TEST_PG_URL.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_postgresql() {
    if [[ -n ${HOTLINE_TEST_PG_URL:-} ]]; then return; fi
    if port_open 5432; then
        # The machine's own PostgreSQL (trust auth on loopback, database "test").
        export HOTLINE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
        return
    fi
    echo "services: starting PostgreSQL from Debian's packages"
    if ! command -v pg_ctlcluster >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
    local state=${HOTLINE_STATE_DIR:-/var/lib/hotline} password
    mkdir -p "$state"
    [[ -f $state/pg-test-password ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/pg-test-password")
    password=$(cat "$state/pg-test-password")
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD '$password'\"" >/dev/null
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
        || su postgres -c "createdb test"
    export HOTLINE_TEST_PG_URL="postgresql+psycopg://postgres:$password@127.0.0.1:5432/test"
}

ensure_redis() {
    if port_open 6379; then return; fi
    echo "services: starting Redis from Debian's packages"
    if ! command -v redis-server >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
    fi
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/hotline-test.log
    for _ in $(seq 1 30); do port_open 6379 && break; sleep 1; done
}
