#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the cluster tests (tests/test_cluster.py):
# this host is the controller and the one compute node. Idempotent: it does nothing when a
# cluster already answers. It needs root and Debian's packages; without them it says why and
# exits 0, and the cluster tests skip with that reason.
set -euo pipefail

if sinfo --noheader >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "start-slurm: not root or no apt-get: no local SLURM, the cluster tests will skip" >&2
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi

# munge authenticates every message between the SLURM daemons and its commands.
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
fi

host=$(hostname -s)
cpus=$(nproc)
# What slurmd may hand out: the machine's memory less a quarter for the system.
memory=$(awk '/MemTotal/ {print int($2 / 1024 * 3 / 4)}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mixmerge-test
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
# a job's end is seen at once, and an ended job stays visible to scontrol for ten minutes
MinJobAge=600
KillWait=5
SchedulerParameters=defer_batch=0
NodeName=${host} CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if sinfo --noheader --states=idle,mixed,allocated 2>/dev/null | grep -q .; then
        exit 0
    fi
    sleep 0.5
done
echo "start-slurm: the node did not come up; see /var/log/slurm/" >&2
exit 1
