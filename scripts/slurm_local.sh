#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1 for tests and for trying `hydra/launcher=slurm` on a laptop.
#
#   bash scripts/slurm_local.sh start     # install (apt, once) and start munged, slurmctld, slurmd
#   eval "$(bash scripts/slurm_local.sh env)"   # SLURM_CONF and the sacct stand-in for this shell
#   bash scripts/slurm_local.sh status    # daemons, partition, queue
#   bash scripts/slurm_local.sh stop      # cancel its jobs, stop the daemons by PID
#
# Runs as root, without systemd or cgroups (proctrack/linuxproc + task/affinity). All state (config, keys,
# logs, pid files, spool) lives in $NNLAB_SLURM_DIR (default /tmp/nnlab-slurm); ports from
# $NNLAB_SLURM_PORT (slurmctld; slurmd uses the next one). There is no slurmdbd, so `sacct` cannot answer:
# $NNLAB_SLURM_DIR/bin/sacct is a stand-in that answers from squeue (jobs stay listed for MinJobAge).
# Exit codes: 0 ok, 1 failed to start, 77 cannot run here (not root, no apt): tests skip on 77.
set -euo pipefail

DIR="${NNLAB_SLURM_DIR:-/tmp/nnlab-slurm}"
PORT="${NNLAB_SLURM_PORT:-6817}"
PARTITION="${NNLAB_SLURM_PARTITION:-cpu}"
NODE=localhost
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF="$DIR/etc/slurm.conf"
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "slurm_local: $*" >&2; }
cannot() { say "$*"; exit 77; }

alive() {  # alive PIDFILE: the daemon whose PID the file holds is running
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    [[ $EUID -eq 0 ]] || cannot "SLURM is not installed and installing it needs root (apt-get)"
    command -v apt-get >/dev/null || cannot "SLURM is not installed and there is no apt-get to install it"
    say "installing ${PACKAGES[*]} (apt-get, --no-install-recommends)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || cannot "apt-get update failed (no network?)"
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null \
        || cannot "apt-get install ${PACKAGES[*]} failed"
}

write_config() {
    local cpus mem real
    read -r cpus mem < <(slurmd -C | tr ' ' '\n' | awk -F= '/^CPUs=/{c=$2} /^RealMemory=/{m=$2} END{print c, m}')
    real=$((mem * 9 / 10))  # below what slurmd measures, or the node is drained for "Low RealMemory"
    mkdir -p "$DIR/etc" "$DIR/log" "$DIR/spool/ctld" "$DIR/spool/slurmd" "$DIR/bin"
    cat >"$CONF" <<EOF
# written by scripts/slurm_local.sh: one node, root, no systemd, no cgroups, no accounting daemon
ClusterName=nnlab
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$DIR/munge/munge.socket.2,cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to squeue (and so to the sacct stand-in) this long
MinJobAge=3600
KillWait=30
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/slurmd
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((real / cpus / 4))
EOF
    install_sacct_standin
}

install_sacct_standin() {
    cp "$HERE/sacct_standin" "$DIR/bin/sacct"
    chmod 755 "$DIR/bin/sacct"
}

start_munge() {
    alive "$DIR/munge/munged.pid" && return
    mkdir -p "$DIR/munge" "$DIR/munge-key"
    chmod 755 "$DIR/munge"      # munged checks these modes: socket dir 755, key dir 700, key 400
    chmod 700 "$DIR/munge-key"
    if [[ ! -s "$DIR/munge-key/munge.key" ]]; then
        dd if=/dev/urandom of="$DIR/munge-key/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$DIR/munge-key/munge.key"
    munged --force --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/munge-key/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge-key/seed"
}

wait_for() {  # wait_for SECONDS CMD...: until CMD succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

node_idle() {
    SLURM_CONF="$CONF" sinfo -h -n "$NODE" -o %t | grep -Eq '^(idle|mix|alloc)'
}

start() {
    [[ $EUID -eq 0 ]] || cannot "the local cluster runs slurmd and munged as root; run as root (or in a container)"
    install
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        install_sacct_standin  # the stand-in may have changed since the cluster started
        say "already running ($DIR)"
        return
    fi
    write_config
    start_munge
    export SLURM_CONF="$CONF"
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    wait_for 20 scontrol ping || { tail -20 "$DIR/log/slurmctld.log" >&2; say "slurmctld did not answer"; exit 1; }
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N "$NODE"
    if ! wait_for 30 node_idle; then
        tail -20 "$DIR/log/slurmd.log" >&2
        say "node $NODE did not come up"; exit 1
    fi
    say "running: partition $PARTITION on $NODE ($DIR)"
}

stop_daemon() {  # stop_daemon PIDFILE NAME: SIGTERM by PID, wait, then SIGKILL
    local pidfile=$1 pid
    alive "$pidfile" || { rm -f "$pidfile"; return; }
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$pidfile"
    say "stopped $2 (pid $pid)"
}

stop() {
    if alive "$DIR/slurmctld.pid"; then  # this cluster's jobs only: the client talks to our slurmctld
        local jobs
        jobs=$(SLURM_CONF="$CONF" squeue -h -o %A -t PD,R,CG,S,RQ 2>/dev/null | sort -u | tr '\n' ' ')
        [[ -n "${jobs// /}" ]] && SLURM_CONF="$CONF" scancel $jobs && sleep 1
    fi
    stop_daemon "$DIR/slurmd.pid" slurmd
    stop_daemon "$DIR/slurmctld.pid" slurmctld
    stop_daemon "$DIR/munge/munged.pid" munged
}

status() {
    local ok=0 d
    for d in munge/munged slurmctld slurmd; do
        if alive "$DIR/$d.pid"; then echo "${d#munge/}: running (pid $(cat "$DIR/$d.pid"))"
        else echo "${d#munge/}: stopped"; ok=1; fi
    done
    if ((ok == 0)); then
        SLURM_CONF="$CONF" sinfo
        SLURM_CONF="$CONF" squeue
    fi
    return $ok
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$CONF PATH=$DIR/bin:\$PATH" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
