#!/usr/bin/env bash
# A real single-node SLURM cluster (slurmctld + slurmd + munge) on this machine, for the SLURM
# executor's tests. Follows ../shared/recipes/slurm.md. Run as root on a CI machine:
#   .ci/slurm-cluster.sh start   # install if needed, configure, start, wait until the node is idle
#   .ci/slurm-cluster.sh stop    # shut the daemons down
# It writes /etc/slurm/slurm.conf only when it is absent or was written by this script.
set -euo pipefail

conf=/etc/slurm/slurm.conf
marker="# written by cbflow .ci/slurm-cluster.sh"

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm slurmctld slurmd slurm-client munge >/dev/null
}

configure() {
    if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
        echo "slurm-cluster: $conf exists and was not written by this script; leaving it alone" >&2
        return
    fi
    mkdir -p /etc/slurm
    cat >"$conf" <<EOF
$marker
ClusterName=ci
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(($(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024)) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install
    configure
    mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    chown munge:munge /run/munge
    chmod 0755 /run/munge
    [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
    if [ ! -S /run/munge/munge.socket.2 ]; then runuser -u munge -- /usr/sbin/munged; fi
    if ! pgrep -x slurmctld >/dev/null; then slurmctld; fi
    if ! pgrep -x slurmd >/dev/null; then slurmd -N localhost; fi
    for _ in $(seq 1 120); do
        state=$(timeout 2 sinfo -h -o %T 2>/dev/null || true)
        if [ "$state" = idle ]; then
            echo "slurm-cluster: node idle"
            return
        fi
        sleep 0.5
    done
    echo "slurm-cluster: the node did not become idle within 60 s (state: ${state:-unknown})" >&2
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1
}

stop() {
    timeout 5 scontrol shutdown 2>/dev/null || true
    for _ in $(seq 1 40); do
        if ! pgrep -x slurmctld >/dev/null && ! pgrep -x slurmd >/dev/null; then break; fi
        sleep 0.25
    done
    pkill -x slurmctld 2>/dev/null || true
    pkill -x slurmd 2>/dev/null || true
    if [ -s /run/munge/munged.pid ]; then kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true; fi
    for _ in $(seq 1 40); do
        if ! pgrep -x munged >/dev/null; then break; fi
        sleep 0.25
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
